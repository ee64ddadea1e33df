"""Compiled programs kept on disk (JAX's persistent compilation cache), so that a restarted app or a new CLI run
loads what an earlier one compiled instead of compiling it again: LeNet-5's first curve point came 0.99 s after
starting a run with a warm cache, 3.2 s cold (`benchmarks/first_point.py --compile-cache DIR`).

The app and the CLI turn it on at start, before anything compiles; the benchmarks leave it off, so the compile
times they report are cold ones. JAX writes an entry once and never again, so a damaged one (a process killed while
writing it) would cost a warning and a compilation on every run: after JAX's warning about it, the entry is removed,
and the program JAX then compiles takes its place.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import jax
import platformdirs

from core.data import download

CACHE_ENV = "DIGIT_LAB_COMPILE_CACHE"  # a folder, or "off"


MAX_BYTES = 512 * 2**20  # the least recently used programs are dropped beyond this (JAX needs `filelock` for it)


def default_dir() -> Path | None:
    """$DIGIT_LAB_COMPILE_CACHE if set ("off": no cache), else `xla` in $DIGIT_LAB_CACHE_DIR (the setting that moves
    every cache), else in the OS user cache directory."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return None if override.strip().lower() == "off" else Path(override).expanduser()
    caches = os.environ.get(download.CACHE_ENV)
    return (Path(caches).expanduser() if caches else Path(platformdirs.user_cache_dir("digit-lab",
                                                                                      appauthor=False))) / "xla"


def enable(directory: Path | None = None) -> Path | None:
    """Keep every compiled program in `directory` (default: `default_dir()`); returns the folder, or None when
    the cache is off. Call it before the first compilation: JAX sets its cache up once, at that point."""
    directory = directory or default_dir()
    if directory is None:
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:  # a folder we cannot write: compile as usual rather than warn about every program
        return None
    _replace_damaged_entries(directory)
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    return directory


DAMAGED_ENTRY = re.compile(r"Error reading persistent compilation cache entry for '([^'/]+)'")


def _replace_damaged_entries(directory: Path) -> None:
    """Remove the entry (or, when JAX names only its program, the program's entries) that JAX's warning says it could
    not read, so that JAX writes the program it compiles instead into the cache. JAX reports it with
    `warnings.warn` alone, so the warnings' display hook is where it can be heard."""
    shown = warnings.showwarning
    if getattr(shown, "replaces_damaged_entries_in", None) == directory:
        return

    def show(message, category, filename, lineno, file=None, line=None):
        damaged = DAMAGED_ENTRY.search(str(message))
        if damaged:
            for entry in directory.glob(f"{damaged.group(1)}-*"):  # (a key is its program's name, "-" and a hash)
                entry.unlink(missing_ok=True)
        shown(message, category, filename, lineno, file, line)

    show.replaces_damaged_entries_in = directory
    warnings.showwarning = show
