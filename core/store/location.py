"""Where the run history lives and who views it: what the app needs before it opens the history (and so before it
imports SQLAlchemy, which costs its first page about 0.2 s)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

HOME_ENV = "DIGIT_LAB_HOME"  # the folder of the default history file
DATABASE_URL_ENV = "DIGIT_LAB_DATABASE_URL"  # the history's location: a SQLAlchemy URL (or a file path)
DATABASE_NAME = "runs.sqlite3"


def default_path() -> Path:
    """The default history database: in $DIGIT_LAB_HOME if set, else in the OS user data directory."""
    home = os.environ.get(HOME_ENV)
    folder = Path(home).expanduser() if home else Path(platformdirs.user_data_dir("digit-lab", appauthor=False))
    return folder / DATABASE_NAME


def default_location() -> str:
    """The history's location: $DIGIT_LAB_DATABASE_URL if set, else the SQLite file `default_path()`."""
    return os.environ.get(DATABASE_URL_ENV, "").strip() or str(default_path())


@dataclass(frozen=True)
class Viewer:
    """Who uses the history: a signed-in user sees and changes their own runs; a teacher sees everyone's too."""

    name: str  # the signed-in user's identity (their e-mail)
    teacher: bool = False
