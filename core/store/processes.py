"""Which process writes a run in training, and whether it still runs: a run whose writer has died reads back as
interrupted."""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path


def _process_start(pid: int) -> str:
    """When process `pid` started, in clock ticks since boot (Linux; "" elsewhere): a pid and its start name one
    process, even after the pid is reused."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def this_writer() -> str:
    """This process, as a run's writer: host, pid and start time."""
    return _writer(os.getpid())


@functools.cache
def _writer(pid: int) -> str:
    """(read once per process: every checkpoint of every run names it)"""
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}"


def writer_alive(writer: str) -> bool:
    """Whether the process that `this_writer` named is still running (a process on another host is taken to be)."""
    host, pid, start = writer.rsplit(":", 2)
    if host != socket.gethostname() or not pid.isdecimal():
        return True
    return process_alive(int(pid)) and _process_start(int(pid)) == start


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host (one this process may not signal counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
