"""Plex end to end: webhooks as Plex sends them, to the daemon's listener, out to the fake Trakt."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemon import Daemon, Home, log_in
from tests.fake_trakt import Episode, FakeTrakt, RecordedRequest
from tests.plex_payloads import episode, jpeg, movie, multipart, webhook
from trakt_scrobbled.events import Ids

SECRET = "k3rv9b2nq8x1m4z7w5y6"
DURATION_MS = 200_000  # 200 s: 1 % is 2 s


@pytest.fixture
def fake() -> Iterator[FakeTrakt]:
    with FakeTrakt() as fake:
        fake.add_movie("The Matrix", 1999, trakt=481, imdb="tt0133093", tmdb=603)
        fake.add_show(
            "Breaking Bad", 2008, trakt=1388, tvdb=81189, episodes=[Episode(1, 2, Ids(trakt=62))]
        )
        yield fake


@pytest.fixture
def home(tmp_path: Path, fake: FakeTrakt) -> Home:
    home = Home.create(
        tmp_path,
        fake.url,
        players=f'[mpv]\nenabled = false\n\n[plex]\nenabled = true\nsecret = "{SECRET}"\n',
    )
    log_in(fake, home)
    return home


@pytest.fixture
def daemon(home: Home) -> Iterator[Daemon]:
    with Daemon(home) as d:
        d.wait_for_log("ready")
        yield d


def at(offset_ms: int | None) -> dict[str, Any]:
    """The movie's metadata with Plex's position (None: Plex did not say)."""
    return movie(view_offset=offset_ms, duration=DURATION_MS)


def post(home: Home, payload: dict[str, Any], *, secret: str = SECRET) -> int:
    body, content_type = multipart(payload, thumb=jpeg())
    url = f"http://127.0.0.1:{home.server_port}/plex/{secret}"
    return httpx.post(url, content=body, headers={"Content-Type": content_type}).status_code


def scrobble(fake: FakeTrakt, verb: str, n: int = 1) -> RecordedRequest:
    return fake.wait_for(lambda r: r.path == f"/scrobble/{verb}", count=n, timeout=15)


def test_a_movie_from_play_to_watched(daemon: Daemon, home: Home, fake: FakeTrakt) -> None:
    assert post(home, webhook("media.play", at(0))) == 200
    start = scrobble(fake, "start")  # at once, at 0
    assert start.json["movie"]["ids"]["imdb"] == "tt0133093"  # by Plex's own ids
    assert start.json["progress"] < 1.0
    assert fake.requests("/search") == []
    assert post(home, webhook("media.pause", at(100_000))) == 200
    pause = scrobble(fake, "stop")
    assert pause.json["progress"] == pytest.approx(50.0, abs=1.0)
    assert post(home, webhook("media.resume", at(100_000))) == 200
    scrobble(fake, "start", 2)
    assert post(home, webhook("media.scrobble", movie(duration=DURATION_MS))) == 200
    assert post(home, webhook("media.stop", movie(duration=DURATION_MS))) == 200
    end = scrobble(fake, "stop", 2)
    assert end.json["progress"] >= 90.0
    fake.wait_until(lambda: len(fake.history()) == 1)


def test_play_at_0_starts_at_once_and_a_pause_at_40_is_a_stop_at_40(
    daemon: Daemon, home: Home, fake: FakeTrakt
) -> None:
    time.sleep(1.0)  # the sender's gap after a (re)start, for Trakt's 1 POST/s: not ours to time
    posted = time.monotonic()
    assert post(home, webhook("media.play", at(0))) == 200
    start = scrobble(fake, "start")
    assert start.json["progress"] < 1.0
    assert start.monotonic - posted < 0.5, "Trakt shows it playing from the first second"
    assert post(home, webhook("media.pause", at(80_000))) == 200  # 40 % of 200 s
    pause = scrobble(fake, "stop")
    assert pause.json["progress"] == pytest.approx(40.0, abs=0.5)
    assert fake.playback()[0].progress == pytest.approx(40.0, abs=0.5)  # Trakt's resume point
    assert fake.history() == ()


def test_a_legacy_tvdb_episode_played_paused_at_half_and_stopped(
    daemon: Daemon, home: Home, fake: FakeTrakt
) -> None:
    length = 3_480_000
    assert post(home, webhook("media.play", episode(legacy=True, view_offset=0))) == 200
    start = scrobble(fake, "start")
    assert start.json["show"]["ids"]["tvdb"] == 81189
    assert (start.json["episode"]["season"], start.json["episode"]["number"]) == (1, 2)
    half = episode(legacy=True, view_offset=length // 2)
    assert post(home, webhook("media.pause", half)) == 200
    assert post(home, webhook("media.stop", episode(legacy=True))) == 200
    stop = scrobble(fake, "stop")
    assert stop.json["episode"]["number"] == 2
    assert stop.json["progress"] == pytest.approx(50.0, abs=0.5)
    time.sleep(1.5)
    assert len(fake.requests("/scrobble/start")) == 1
    assert len(fake.requests("/scrobble/stop")) == 1, "the stop after the pause adds nothing"
    assert fake.history() == ()


def test_other_peoples_plays_and_wrong_secrets_are_turned_away(
    daemon: Daemon, home: Home, fake: FakeTrakt
) -> None:
    foreign = webhook(
        "media.play", movie(view_offset=150_000, duration=DURATION_MS), user=False, account="guest"
    )
    assert post(home, foreign) == 200  # accepted by the listener, ignored by the scrobbler
    assert post(home, webhook("media.play", movie()), secret="not-the-secret") == 404
    status = httpx.get(f"http://127.0.0.1:{home.server_port}/status").json()
    (plex,) = [p for p in status["players"] if p["name"] == "plex"]
    assert plex["ignored"] == {"account": 1}
    assert fake.requests("/scrobble") == []
    assert SECRET not in daemon.stderr()
    assert daemon.running
