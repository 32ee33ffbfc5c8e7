"""One daemon per state folder: two would read the same players and scrobble everything twice."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


class AlreadyRunning(Exception):
    """Another daemon holds the state folder."""


@contextlib.contextmanager
def single_instance(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (released by the kernel even after SIGKILL)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            other = os.read(fd, 32).decode(errors="replace").strip() or "?"
            raise AlreadyRunning(
                f"another trakt-scrobbled (pid {other}) already uses {path.parent}"
            ) from err
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)
