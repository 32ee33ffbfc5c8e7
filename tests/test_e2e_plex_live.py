"""Plex live mode end to end: the fake Plex server's notifications, through the daemon, to the
fake Trakt; and `doctor`'s live-mode checks against the fake server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import Daemon, Home, log_in
from tests.fake_plex import FRIEND, KID, OWNER_TOKEN, PHONE, TV, FakePlex
from tests.fake_trakt import FakeTrakt, RecordedRequest
from trakt_scrobbled.config import PlexConfig, PlexMode
from trakt_scrobbled.doctor import CheckStatus, check_plex_live
from trakt_scrobbled.paths import Paths
from trakt_scrobbled.plextv import PlexLogin, PlexLoginStore

pytestmark = [pytest.mark.timeout(90)]

MOVIE_MS = 8_160_000


@pytest.fixture
def plex() -> Iterator[FakePlex]:
    with FakePlex() as fake:
        yield fake


@pytest.fixture
def fake() -> Iterator[FakeTrakt]:
    with FakeTrakt() as fake:
        fake.add_movie("The Matrix", 1999, trakt=481, imdb="tt0133093", tmdb=603)
        yield fake


def live_home(tmp_path: Path, fake: FakeTrakt, plex: FakePlex, *, token: str = OWNER_TOKEN) -> Home:
    players = (
        '[mpv]\nenabled = false\n\n[plex]\nenabled = true\nmode = "live"\n'
        f'url = "{plex.url}"\ntoken = "{token}"\n'
    )
    home = Home.create(tmp_path, fake.url, players=players)
    log_in(fake, home)
    return home


def scrobble(fake: FakeTrakt, verb: str, n: int = 1) -> RecordedRequest:
    return fake.wait_for(lambda r: r.path == f"/scrobble/{verb}", count=n, timeout=15)


def test_a_movie_through_the_daemon_survives_a_dropped_socket(
    tmp_path: Path, fake: FakeTrakt, plex: FakePlex
) -> None:
    home = live_home(tmp_path, fake, plex)
    with Daemon(home) as daemon:
        daemon.wait_for_log("following the Plex server at 127.0.0.1 live", timeout=15)
        theirs = plex.play("2002", account=FRIEND, client=PHONE, offset_ms=100_000)
        kids = plex.play("2002", account=KID, client=PHONE, offset_ms=100_000)
        key = plex.play("1001", client=TV, offset_ms=200_000)  # past 1 %: started at once
        start = scrobble(fake, "start")
        assert start.json["movie"]["ids"]["imdb"] == "tt0133093"  # Plex's own Guid ids

        plex.pause(key, MOVIE_MS // 2)
        pause = scrobble(fake, "stop")
        assert pause.json["progress"] == pytest.approx(50.0, abs=0.5)

        plex.drop_websockets()
        daemon.wait_for_log(
            "following the Plex server at 127.0.0.1 live", timeout=10, since=daemon.mark()
        )
        plex.resume(key, MOVIE_MS // 2)
        scrobble(fake, "start", 2)
        plex.stop_session(theirs, 3_000_000)
        plex.stop_session(kids, 3_000_000)
        plex.stop_session(key, MOVIE_MS * 95 // 100)
        end = scrobble(fake, "stop", 2)
        assert end.json["progress"] >= 90.0
        fake.wait_until(lambda: len(fake.history()) == 1, timeout=15)
        # one play, started twice (play, resume): never a second play for the reconnect;
        # nothing of the other accounts' plays
        assert len(fake.requests("/scrobble/start")) == 2
        assert all("movie" in r.json for r in fake.requests("/scrobble"))
        assert OWNER_TOKEN not in daemon.stderr() + daemon.stdout()
        assert daemon.terminate() == 0


def test_a_restarted_plex_server_mid_play_is_one_play(
    tmp_path: Path, fake: FakeTrakt, plex: FakePlex
) -> None:
    home = live_home(tmp_path, fake, plex)
    with Daemon(home) as daemon:
        daemon.wait_for_log("following the Plex server at 127.0.0.1 live", timeout=15)
        plex.play("1001", client=TV, offset_ms=200_000)
        scrobble(fake, "start")
        mark = daemon.mark()
        plex.restart(down_for=0.5)
        daemon.wait_for_log("following the Plex server at 127.0.0.1 live", since=mark)
        key = plex.play("1001", client=TV, offset_ms=260_000, session_key="99")
        plex.stop_session(key, MOVIE_MS * 92 // 100)
        end = scrobble(fake, "stop")
        assert end.json["progress"] >= 90.0
        fake.wait_until(lambda: len(fake.history()) == 1, timeout=15)
        assert len(fake.requests("/scrobble/start")) == 1
        assert daemon.terminate() == 0


def _paths(tmp_path: Path) -> Paths:
    return Paths(config_file=tmp_path / "config.toml", state_dir=tmp_path / "state")


async def test_doctor_with_the_owners_token(tmp_path: Path, plex: FakePlex) -> None:
    config = PlexConfig(enabled=True, mode=PlexMode.LIVE, url=plex.url, token=OWNER_TOKEN)
    plex.play("1001")
    checks = await check_plex_live(config, _paths(tmp_path))
    assert [c.status for c in checks] == [CheckStatus.OK] * 3
    assert "version 1.41.3" in checks[0].message
    assert "server owner's" in checks[2].message and "(1 now)" in checks[2].message
    assert OWNER_TOKEN not in "".join(c.render() for c in checks)


async def test_doctor_with_a_non_owner_token_from_plex_login(
    tmp_path: Path, plex: FakePlex
) -> None:
    paths = _paths(tmp_path)
    PlexLoginStore(paths.plex_login_file).save(PlexLogin("cid", FRIEND.token, plex.url, "Office"))
    config = PlexConfig(enabled=True, mode=PlexMode.LIVE, accounts=("bob",))
    checks = await check_plex_live(config, paths)
    assert [c.status for c in checks] == [CheckStatus.OK, CheckStatus.OK, CheckStatus.NOTE]
    assert "not the server owner's: only its own account's plays" in checks[2].message


async def test_doctor_with_a_revoked_token_and_without_a_login(
    tmp_path: Path, plex: FakePlex
) -> None:
    plex.revoke(OWNER_TOKEN)
    config = PlexConfig(enabled=True, mode=PlexMode.LIVE, url=plex.url, token=OWNER_TOKEN)
    checks = await check_plex_live(config, _paths(tmp_path))
    assert [c.status for c in checks] == [CheckStatus.OK, CheckStatus.FAIL]
    assert "refuses the token (401)" in checks[1].message and "plex login" in checks[1].hint

    (none,) = await check_plex_live(PlexConfig(enabled=True, mode=PlexMode.LIVE), _paths(tmp_path))
    assert none.status is CheckStatus.FAIL and "plex login" in none.hint

    plex.stop()
    (down,) = await check_plex_live(config, _paths(tmp_path), wait=1.0)
    assert down.status is CheckStatus.FAIL and "did not answer" in down.message


def test_a_non_owner_login_from_plex_login_scrobbles_its_own_plays_only(
    tmp_path: Path, fake: FakeTrakt, plex: FakePlex
) -> None:
    players = '[mpv]\nenabled = false\n\n[plex]\nenabled = true\nmode = "live"\n'
    home = Home.create(tmp_path, fake.url, players=players)
    log_in(fake, home)
    PlexLoginStore(home.state_dir / "plex.json").save(
        PlexLogin("bench-client", FRIEND.token, plex.url, "Office", "2", "bob")
    )
    with Daemon(home) as daemon:
        daemon.wait_for_log("following the Plex server at 127.0.0.1 live", timeout=15)
        plex.play("1001", client=TV, offset_ms=300_000)  # the owner's: not on bob's socket
        key = plex.play("1001", account=FRIEND, client=PHONE, offset_ms=200_000)
        scrobble(fake, "start")
        plex.stop_session(key, MOVIE_MS * 95 // 100)
        scrobble(fake, "stop")
        fake.wait_until(lambda: len(fake.history()) == 1, timeout=15)
        assert len(fake.requests("/scrobble/start")) == 1
        daemon.wait_for_log("not the server owner's: only its own account's plays")
        assert FRIEND.token not in daemon.stderr() + daemon.stdout()
        assert daemon.terminate() == 0
