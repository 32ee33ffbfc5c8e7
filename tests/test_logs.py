"""Logging: the journal's priorities under systemd, and -v showing this project's lines only."""

from __future__ import annotations

import io
import logging
import os
import re
from pathlib import Path

import pytest

from tests.daemon import Daemon, Home, run_cli
from tests.fake_trakt import FakeTrakt
from trakt_scrobbled import logs


@pytest.mark.parametrize(
    ("level", "prio"),
    [
        (logging.CRITICAL, 2),
        (logging.ERROR, 3),
        (logging.WARNING, 4),
        (logging.INFO, 6),
        (logging.DEBUG, 7),
        (logging.INFO + 5, 6),
        (1, 7),
    ],
)
def test_priorities(level: int, prio: int) -> None:
    assert logs.priority(level) == prio


def test_every_line_of_a_record_carries_its_priority() -> None:
    record = logging.LogRecord("trakt_scrobbled.app", logging.ERROR, __file__, 1, "a\nb", (), None)
    assert logs.JournalFormatter().format(record) == "<3>trakt_scrobbled.app: a\n<3>b"


def test_journal_stream_must_be_our_own_stderr(tmp_path: Path) -> None:
    out = tmp_path / "stderr"
    with out.open("w") as stream:
        st = os.fstat(stream.fileno())
        assert logs.is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, stream)
        for value in ("", "x", f"{st.st_dev}:{st.st_ino + 1}", f"{st.st_dev}"):
            assert not logs.is_journal({"JOURNAL_STREAM": value}, stream), value
        assert not logs.is_journal({}, stream)
    assert not logs.is_journal({"JOURNAL_STREAM": "1:2"}, io.StringIO())


def test_under_journald_lines_have_priorities_and_no_timestamps(
    tmp_path: Path, fake_trakt: FakeTrakt
) -> None:
    """The daemon's stderr is the file systemd would have made a journal stream."""
    home = Home.create(tmp_path, fake_trakt.url)
    daemon = Daemon(home, verbose=True)
    daemon.stderr_path.parent.mkdir(parents=True, exist_ok=True)
    daemon.stderr_path.touch()
    st = daemon.stderr_path.stat()
    daemon = Daemon(home, verbose=True, env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    with daemon:
        daemon.wait_for_log(re.compile(r"^<6>trakt_scrobbled\.app: ready", re.M), timeout=15)
        mark = daemon.mark()
        home.config_file.write_text(home.config_file.read_text() + "\n[nope]\n")
        daemon.wait_for_log(
            re.compile(r"^<3>trakt_scrobbled\.app: config not reloaded", re.M), since=mark
        )
        assert daemon.terminate() == 0
    lines = daemon.stderr().splitlines()
    assert lines and all(re.match(r"<[2-7]>", line) for line in lines), lines
    assert not [line for line in lines if re.search(r"\d\d:\d\d:\d\d", line)]
    assert any(line.startswith("<7>trakt_scrobbled.") for line in lines), "-v shows our debug"


def test_verbose_shows_our_debug_lines_not_the_libraries(tmp_path: Path) -> None:
    home = Home.create(tmp_path, "http://127.0.0.1:9")
    result = run_cli(
        home, "identify", "--offline", "-v", "/films/The.Matrix.1999.1080p.BluRay.x264.mkv"
    )
    assert result.returncode == 0, result.stderr
    assert "The Matrix" in result.stdout
    foreign = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and " trakt_scrobbled" not in line
    ]
    assert foreign == [], foreign[:5]
