"""Colour on a terminal only: a real pseudo-terminal, NO_COLOR, TERM=dumb and pipes."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.daemon import REPO_ROOT, Home
from tests.test_status import BASE, NOW
from trakt_scrobbled.status_view import render_status
from trakt_scrobbled.term import Paint, wants_colour

ESC = re.compile(r"\x1b\[[0-9;]*m")


def test_wants_colour_on_a_tty_only_and_never_with_no_color() -> None:
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as tty:
            assert wants_colour(tty, {"TERM": "xterm"})
            assert not wants_colour(tty, {"TERM": "xterm", "NO_COLOR": "1"})
            assert not wants_colour(tty, {"TERM": "dumb"})
        read, write = os.pipe()
        with os.fdopen(write, "w") as pipe:
            assert not wants_colour(pipe, {"TERM": "xterm"})
        os.close(read)
    finally:
        os.close(leader)
        os.close(follower)


def test_status_colours_labels_and_trouble_and_nothing_else() -> None:
    doc = {**BASE, "queue": {"pending": 1, "failed": 2}, "auth": {"state": "login needed"}}
    plain = render_status(doc, now=NOW)
    coloured = render_status(doc, now=NOW, paint=Paint(True))
    assert ESC.sub("", coloured) == plain
    assert "\x1b[1;31m2 failed\x1b[0m" in coloured
    assert "\x1b[1;31mlogin needed\x1b[0m" in coloured
    assert "\x1b[1mQueue:\x1b[0m" in coloured


def _doctor_in_a_pty(home: Home, extra: dict[str, str]) -> str:
    """`doctor` with its stdout on a real pseudo-terminal; what the terminal received."""
    leader, follower = pty.openpty()
    env = home.env({"TERM": "xterm", "PATH": "/nonexistent", **extra})
    env.pop("NO_COLOR", None) if "NO_COLOR" not in extra else None
    proc = subprocess.Popen(
        [sys.executable, "-m", "trakt_scrobbled", "doctor"],
        stdout=follower,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=REPO_ROOT,
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    proc.wait(30)
    return b"".join(chunks).decode(errors="replace")


def test_doctor_is_coloured_on_a_terminal_unless_no_color(tmp_path: Path) -> None:
    home = Home.create(tmp_path, "http://127.0.0.1:9")
    coloured = _doctor_in_a_pty(home, {})
    assert "\x1b[1;31m[FAIL]" in coloured, coloured
    assert "\x1b[33m[note]" in coloured
    plain = _doctor_in_a_pty(home, {"NO_COLOR": "1"})
    assert "[FAIL]" in plain and not ESC.search(plain), plain
    piped = subprocess.run(
        [sys.executable, "-m", "trakt_scrobbled", "doctor"],
        capture_output=True,
        text=True,
        env=home.env({"TERM": "xterm", "PATH": "/nonexistent"}),
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )
    assert "[FAIL]" in piped.stdout and not ESC.search(piped.stdout)
