"""Kodi end to end: a real Kodi under Xvfb, the daemon as a process, the fake Trakt."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import Daemon, Home, log_in
from tests.fake_trakt import Episode, FakeTrakt, RecordedRequest
from tests.kodi_fixture import KodiProcess, Library
from tests.realplayers import MediaFiles
from trakt_scrobbled.events import Ids
from trakt_scrobbled.trakt.auth import Token, TokenStore


@pytest.fixture
def fake() -> Iterator[FakeTrakt]:
    with FakeTrakt() as fake:
        fake.add_movie("The Matrix", 1999, trakt=481, imdb="tt0133093")
        fake.add_show(
            "Breaking Bad",
            2008,
            trakt=1388,
            tvdb=81189,
            imdb="tt0903747",
            episodes=[Episode(1, 2, Ids(trakt=73483, tvdb=349232, imdb="tt1054724"))],
        )
        yield fake


def players(kodi: KodiProcess) -> str:
    return f"[mpv]\nenabled = false\n\n[kodi]\nenabled = true\nport = {kodi.port}\n"


@pytest.fixture
def daemon(tmp_path: Path, fake: FakeTrakt, kodi: KodiProcess) -> Iterator[Daemon]:
    home = Home.create(tmp_path / "home", fake.url, players=players(kodi))
    log_in(fake, home)
    with Daemon(home) as d:
        d.wait_for_log(r"kodi: connected")
        yield d


def scrobble(fake: FakeTrakt, verb: str, n: int = 1) -> RecordedRequest:
    return fake.wait_for(lambda r: r.path == f"/scrobble/{verb}", count=n, timeout=15)


def test_library_episode_is_scrobbled_by_its_ids(
    daemon: Daemon, fake: FakeTrakt, kodi: KodiProcess, kodi_library: Library
) -> None:
    asyncio.run(kodi.control.open_episode(kodi_library.episode_id))
    start = scrobble(fake, "start")
    assert start.json["episode"]["ids"]["tvdb"] == 349232  # the player's ids, no search
    assert fake.requests("/search") == []
    asyncio.run(kodi.control.stop())
    stop = scrobble(fake, "stop")
    assert 1.0 <= stop.json["progress"] < 80.0
    assert fake.history() == ()


def test_plain_file_found_by_its_name_then_paused_and_resumed(
    daemon: Daemon, fake: FakeTrakt, kodi: KodiProcess, kodi_media: MediaFiles
) -> None:
    async def scene() -> None:
        await kodi.control.open(kodi_media.movie)
        await kodi.control.wait_playing()
        await kodi.control.seek(30.0)
        await kodi.control.wait_playing(at_least=30.0)

    asyncio.run(scene())
    start = scrobble(fake, "start")
    assert start.json["movie"]["ids"]["trakt"] == 481
    asyncio.run(kodi.control.pause())
    pause = scrobble(fake, "stop")
    assert pause.json["progress"] == pytest.approx(20.0, abs=3.0)
    asyncio.run(kodi.control.resume())
    scrobble(fake, "start", 2)
    asyncio.run(kodi.control.seek(140.0))  # near the end, then stop: a watch
    asyncio.run(kodi.control.wait_playing(at_least=140.0))
    asyncio.run(kodi.control.stop())
    end = scrobble(fake, "stop", 2)
    assert end.json["progress"] >= 90.0
    assert len(fake.history()) == 1


PROFILES = """
[accounts.alice]
kodi = ["127.0.0.1/Alice"]

[accounts.house]
kodi = ["127.0.0.1/MASTER USER"]
"""


def test_a_kodi_profile_routes_its_plays_to_its_account(
    tmp_path: Path, fake: FakeTrakt, kodi: KodiProcess, kodi_media: MediaFiles
) -> None:
    home = Home.create(tmp_path / "home", fake.url, players=players(kodi), extra=PROFILES)
    for account in ("alice", "house"):
        fake.add_user(account)
        pair = fake.issue_token(account)
        TokenStore(home.state_dir / f"token-{account}.json").save(
            Token(pair.access_token, pair.refresh_token, pair.created_at + pair.expires_in)
        )
    with Daemon(home) as daemon:
        daemon.wait_for_log(r"kodi: connected")
        asyncio.run(kodi.control.open(kodi_media.movie))
        start = scrobble(fake, "start")
        assert (start.user, start.json["movie"]["ids"]["trakt"]) == ("house", 481)
        asyncio.run(kodi.control.stop())
        assert scrobble(fake, "stop").user == "house"
    assert {r.user for r in fake.requests("/scrobble")} == {"house"}
