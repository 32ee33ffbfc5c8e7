"""The daemon as a process: starts, idles, stops on signals, and survives SIGKILL losing nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_trakt import FakeTrakt
from trakt_scrobbled.clock import SystemClock
from trakt_scrobbled.events import Ids, MediaType, Scrobble, ScrobbleVerb, TraktItem
from trakt_scrobbled.outbox import Outbox
from trakt_scrobbled.store import open_db
from trakt_scrobbled.trakt.auth import Token, TokenStore


class Daemon:
    """`trakt-scrobbled run` in a subprocess with its own XDG folders; stderr kept in a file."""

    def __init__(self, root: Path, api_url: str, *, players: str = "") -> None:
        self.root = root
        self.state_dir = root / "state" / "trakt-scrobbled"
        self.log = root / "daemon.log"
        config = root / "config" / "trakt-scrobbled" / "config.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(
            f'[trakt]\nclient_id = "test-client-id"\nclient_secret = "test-secret"\n'
            f'api_url = "{api_url}"\n\n[mpv]\nenabled = false\n{players}'
        )
        self.env = {
            **os.environ,
            "HOME": str(root),
            "XDG_CONFIG_HOME": str(root / "config"),
            "XDG_STATE_HOME": str(root / "state"),
            "PYTHONUNBUFFERED": "1",
        }
        for key in ("TRAKT_CLIENT_ID", "TRAKT_CLIENT_SECRET", "NOTIFY_SOCKET"):
            self.env.pop(key, None)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "trakt_scrobbled", "run"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"daemon exited {self.proc.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {text!r} in the daemon's log within {timeout} s:\n{self.output()}")
            time.sleep(0.05)

    def signal(self, sig: int, timeout: float = 5.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def daemon(tmp_path: Path, fake_trakt: FakeTrakt) -> Iterator[Daemon]:
    d = Daemon(tmp_path, fake_trakt.url)
    yield d
    d.kill()


def login(fake: FakeTrakt, state_dir: Path) -> None:
    pair = fake.issue_token()
    TokenStore(state_dir / "token.json").save(
        Token(pair.access_token, pair.refresh_token, pair.created_at + pair.expires_in)
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_idles_quietly_and_stops_cleanly_on_signal(
    daemon: Daemon, fake_trakt: FakeTrakt, sig: int
) -> None:
    login(fake_trakt, daemon.state_dir)
    daemon.start()
    daemon.wait_log("ready")
    assert "no player enabled" in daemon.output()
    size = len(daemon.output())
    time.sleep(1.0)  # idle: observe that nothing is logged for a while
    assert len(daemon.output()) == size, "an idle daemon keeps quiet"
    started = time.monotonic()
    assert daemon.signal(sig) == 0
    assert time.monotonic() - started < 5
    assert "stopped" in daemon.output()
    assert "Traceback" not in daemon.output()


def test_corrupt_database_refuses_to_start_and_is_kept(daemon: Daemon) -> None:
    daemon.state_dir.mkdir(parents=True)
    db = daemon.state_dir / "state.db"
    db.write_bytes(b"garbage" * 1000)
    daemon.start()
    assert daemon.proc is not None
    assert daemon.proc.wait(15) == 1
    assert "state database" in daemon.output()
    assert "Traceback" not in daemon.output()
    assert db.read_bytes() == b"garbage" * 1000


def test_sigkill_with_pending_rows_loses_and_duplicates_nothing(
    daemon: Daemon, fake_trakt: FakeTrakt
) -> None:
    """Rows pending at a SIGKILL are all delivered after the restart, each play once.

    The first watched stop reaches Trakt but its answer is lost (the daemon cannot know it
    arrived); the resend after the restart gets a 409 and must not add a second play.
    """
    movies = [fake_trakt.add_movie(f"Movie {n}", 2000 + n) for n in range(3)]
    items = [
        TraktItem(MediaType.MOVIE, Ids(trakt=m.ids.trakt), title=m.title, year=m.year)
        for m in movies
    ]
    login(fake_trakt, daemon.state_dir)
    conn = open_db(daemon.state_dir / "state.db")
    outbox = Outbox(conn, SystemClock())
    outbox.enqueue(Scrobble(ScrobbleVerb.STOP, "play-0", items[0], 95.0, watched=True))
    outbox.enqueue(Scrobble(ScrobbleVerb.STOP, "play-1", items[1], 42.0))
    outbox.enqueue(Scrobble(ScrobbleVerb.STOP, "play-2", items[2], 99.0, watched=True))
    conn.close()

    fake_trakt.drop_after_processing_next(1, path_prefix="/scrobble")
    daemon.start()
    fake_trakt.wait_for(lambda r: r.path == "/scrobble/stop", timeout=10)
    fake_trakt.set_outage(True)  # after that first one, Trakt is unreachable
    fake_trakt.wait_for(lambda r: r.path == "/scrobble/stop", count=2, timeout=10)
    daemon.kill()  # SIGKILL mid-retry

    conn = open_db(daemon.state_dir / "state.db")
    assert Outbox(conn, SystemClock()).counts().pending == 3
    conn.close()

    fake_trakt.set_outage(False)
    daemon.start()
    fake_trakt.wait_until(
        lambda: len(fake_trakt.playback()) == 1 and len(fake_trakt.history()) == 2, timeout=20
    )

    def drained() -> bool:
        c = open_db(daemon.state_dir / "state.db")
        try:
            return Outbox(c, SystemClock()).counts().pending == 0
        finally:
            c.close()

    deadline = time.monotonic() + 10
    while not drained():
        assert time.monotonic() < deadline, daemon.output()
        time.sleep(0.1)
    watched = sorted(e.item.title for e in fake_trakt.history())  # type: ignore[union-attr]
    assert watched == ["Movie 0", "Movie 2"]  # Movie 0 once, despite being sent twice
    first = [
        r.status
        for r in fake_trakt.requests("/scrobble/stop")
        if r.json["movie"]["ids"]["trakt"] == movies[0].ids.trakt
    ]
    # processed but unanswered, then resent after the restart: Trakt says "already scrobbled"
    assert first[0] is None
    assert first[-1] == 409
    assert daemon.signal(signal.SIGTERM) == 0
