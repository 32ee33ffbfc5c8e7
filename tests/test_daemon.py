"""The daemon as a process: starts, idles, stops on signals, and survives SIGKILL losing nothing."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.daemon import Daemon, Home, enqueue, log_in, queue_counts
from tests.fake_trakt import FakeTrakt
from trakt_scrobbled.events import Ids, MediaType, Scrobble, ScrobbleVerb, TraktItem


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_idles_quietly_and_stops_cleanly_on_signal(
    tmp_path: Path, fake_trakt: FakeTrakt, sig: signal.Signals
) -> None:
    home = Home.create(tmp_path, fake_trakt.url)
    log_in(fake_trakt, home)
    with Daemon(home) as daemon:
        daemon.wait_for_log("ready")
        assert "no player enabled" in daemon.stderr()
        quiet_since = daemon.mark()
        time.sleep(1.0)  # idle: observe that nothing is logged for a while
        assert daemon.mark() == quiet_since, "an idle daemon keeps quiet"
        started = time.monotonic()
        daemon.signal(sig)
        assert daemon.wait_exit(5) == 0
        assert time.monotonic() - started < 5
    assert "stopped" in daemon.stderr()
    assert "Traceback" not in daemon.stderr()


def test_corrupt_database_refuses_to_start_and_is_kept(
    tmp_path: Path, fake_trakt: FakeTrakt
) -> None:
    home = Home.create(tmp_path, fake_trakt.url)
    home.state_dir.mkdir(parents=True)
    home.db_file.write_bytes(b"garbage" * 1000)
    with Daemon(home) as daemon:
        assert daemon.wait_exit(15) == 1
    assert "state database" in daemon.stderr()
    assert "Traceback" not in daemon.stderr()
    assert home.db_file.read_bytes() == b"garbage" * 1000


def test_sigkill_with_pending_rows_loses_and_duplicates_nothing(
    tmp_path: Path, fake_trakt: FakeTrakt
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
    home = Home.create(tmp_path, fake_trakt.url)
    log_in(fake_trakt, home)
    enqueue(
        home,
        Scrobble(ScrobbleVerb.STOP, "play-0", items[0], 95.0, watched=True),
        Scrobble(ScrobbleVerb.STOP, "play-1", items[1], 42.0),
        Scrobble(ScrobbleVerb.STOP, "play-2", items[2], 99.0, watched=True),
    )
    fake_trakt.drop_after_processing_next(1, path_prefix="/scrobble")
    with Daemon(home, name="first") as first:
        fake_trakt.wait_for(lambda r: r.path == "/scrobble/stop", timeout=10)
        fake_trakt.set_outage(True)  # after that first one, Trakt is unreachable
        fake_trakt.wait_for(lambda r: r.path == "/scrobble/stop", count=2, timeout=10)
        first.kill()  # SIGKILL mid-retry
    assert queue_counts(home).pending == 3

    fake_trakt.set_outage(False)
    with Daemon(home, name="second") as second:
        fake_trakt.wait_until(
            lambda: len(fake_trakt.playback()) == 1 and len(fake_trakt.history()) == 2, timeout=20
        )
        second.wait_until(lambda: queue_counts(home).pending == 0)
        assert second.terminate() == 0
    watched = sorted(e.item.title for e in fake_trakt.history())  # type: ignore[union-attr]
    assert watched == ["Movie 0", "Movie 2"]  # Movie 0 once, despite being sent twice
    first_movie = [
        r.status
        for r in fake_trakt.requests("/scrobble/stop")
        if r.json["movie"]["ids"]["trakt"] == movies[0].ids.trakt
    ]
    # processed but unanswered, then resent after the restart: Trakt says "already scrobbled"
    assert first_movie[0] is None
    assert first_movie[-1] == 409
