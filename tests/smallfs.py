"""A real, small file system for disk-full tests: a tmpfs mounted in the test's folder.

Mounting needs root (CI runs as root): elsewhere the tests skip with a message; in CI
(`CI` set) a failure to mount fails the test instead.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest


def mount_small_fs(where: Path, size: str) -> None:
    """A tmpfs of `size` at `where`; skips (outside CI) where mounting is not allowed."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip() or f"exit {done.returncode}"
        if os.environ.get("CI"):
            pytest.fail(f"CI must be able to mount a tmpfs (run as root): {why}")
        pytest.skip(f"cannot mount a small file system here ({why}); run as root to test it")


def unmount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def fill(folder: Path) -> Path:
    """Write a file until the file system is full; returns it (delete it to free the space)."""
    filler = folder / "filler"
    chunk = b"\0" * 16384
    with filler.open("wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(chunk)
    with filler.open("ab", buffering=0) as f, contextlib.suppress(OSError):
        for _ in range(16384):  # the last partial block, byte by byte
            f.write(b"\0")
    return filler
