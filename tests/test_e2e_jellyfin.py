"""Jellyfin end to end: the daemon, its listener or the fake Jellyfin's WebSocket, out to the
fake Trakt. The duplicate class the Jellyfin Trakt plugin's users suffer (repeated
`PlaybackStop`, `PlayedToCompletion` again and again) must leave exactly one watched record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemon import Daemon, Home, log_in
from tests.fake_jellyfin import ALICE, API_KEY, BOB, FakeJellyfin, movie
from tests.fake_trakt import FakeTrakt, RecordedRequest
from tests.test_player_jellyfin import jf_hook

pytestmark = [pytest.mark.timeout(120)]

SECRET = "jf-k3rv9b2nq8x1m4z7w5y6"


@pytest.fixture
def fake() -> Iterator[FakeTrakt]:
    with FakeTrakt() as fake:
        fake.add_movie("The Matrix", 1999, trakt=481, imdb="tt0133093", tmdb=603)
        yield fake


def scrobble(fake: FakeTrakt, verb: str, n: int = 1) -> RecordedRequest:
    return fake.wait_for(lambda r: r.path == f"/scrobble/{verb}", count=n, timeout=15)


def test_repeated_stops_and_completions_leave_one_watched_record(
    tmp_path: Path, fake: FakeTrakt
) -> None:
    players = (
        '[mpv]\nenabled = false\n\n[jellyfin]\nenabled = true\nmode = "webhook"\n'
        f'secret = "{SECRET}"\nusers = ["alice"]\n'
    )
    home = Home.create(tmp_path, fake.url, players=players)
    log_in(fake, home)
    with Daemon(home) as daemon:
        daemon.wait_for_log("ready")
        url = f"http://127.0.0.1:{home.server_port}/jellyfin/{SECRET}"

        def post(body: dict[str, Any]) -> None:
            assert httpx.post(url, json=body, timeout=10).status_code == 200

        post(jf_hook("PlaybackStart", 0))
        assert scrobble(fake, "start").json["movie"]["ids"]["imdb"] == "tt0133093"
        post(jf_hook("PlaybackProgress", 100, IsPaused=True))
        assert scrobble(fake, "stop").json["progress"] == pytest.approx(50.0, abs=1.0)
        post(jf_hook("PlaybackProgress", 100))
        scrobble(fake, "start", 2)
        for _ in range(10):  # what the plugin's users see: the stop, again and again
            post(jf_hook("PlaybackProgress", 199))
            post(jf_hook("PlaybackStop", 199, PlayedToCompletion=True))
            post(jf_hook("PlaybackStop", 200, PlayedToCompletion="True"))
        end = scrobble(fake, "stop", 2)
        assert end.json["progress"] >= 99.0
        fake.wait_until(lambda: len(fake.history()) == 1)
        post(jf_hook("PlaybackStop", 200, PlayedToCompletion=True))
        # A later play's start goes out after anything the stops above could have queued.
        post(jf_hook("PlaybackStart", 0, DeviceId="another-tv"))
        scrobble(fake, "start", 3)
        assert len(fake.history()) == 1
        assert len(fake.requests("/scrobble/stop")) == 2  # the pause and the one watch


def test_live_mode_two_users_pause_and_stop(tmp_path: Path, fake: FakeTrakt) -> None:
    with FakeJellyfin() as jf:
        players = (
            "[mpv]\nenabled = false\n\n[jellyfin]\nenabled = true\n"
            f'url = "{jf.url}"\napi_key = "{API_KEY}"\n'
        )
        home = Home.create(tmp_path, fake.url, players=players)
        log_in(fake, home)
        jf.play("tv", ALICE, movie(runtime=200.0), 0.0)
        jf.play("phone", BOB, movie("mv2", runtime=200.0), 0.0)  # not the owner's: ignored
        with Daemon(home) as daemon:
            daemon.wait_for_log("ready")
            daemon.wait_for_log("following the server")
            jf.progress("tv", 10.0)
            scrobble(fake, "start")
            jf.pause("tv", 100.0)
            assert scrobble(fake, "stop").json["progress"] == pytest.approx(50.0, abs=1.0)
            jf.resume("tv", 100.0)
            scrobble(fake, "start", 2)
            jf.seek("tv", 185.0)  # the client's last report before it stops
            jf.stop_playing("tv", 190.0)  # the server forgets the position: it is estimated
            scrobble(fake, "stop", 2)
            fake.wait_until(lambda: len(fake.history()) == 1)
        assert len(fake.requests("/scrobble/start")) == 2


def test_a_multi_episode_file_is_one_watch_per_episode(tmp_path: Path, fake: FakeTrakt) -> None:
    """`EpisodeNumberEnd`: the file is split evenly by duration, each part its own episode."""
    from tests.fake_trakt.catalogue import Episode, ShowEpisode

    fake.add_show(
        "Breaking Bad", 2008, trakt=1388, tvdb=81189, episodes=[Episode(1, 1), Episode(1, 2)]
    )
    players = (
        '[mpv]\nenabled = false\n\n[jellyfin]\nenabled = true\nmode = "webhook"\n'
        f'secret = "{SECRET}"\nusers = ["alice"]\n'
    )
    home = Home.create(tmp_path, fake.url, players=players)
    log_in(fake, home)
    double = {
        "ItemType": "Episode",
        "ItemId": "ep12",
        "Name": "Pilot / Cat's in the Bag",
        "SeriesName": "Breaking Bad",
        "Year": "2008",
        "SeasonNumber": "1",
        "EpisodeNumber": "1",
        "EpisodeNumberEnd": "2",
        "Provider_tvdb": "349232",
        "Provider_imdb": "",
        "Provider_tmdb": "",
    }
    with Daemon(home) as daemon:
        daemon.wait_for_log("ready")
        url = f"http://127.0.0.1:{home.server_port}/jellyfin/{SECRET}"

        def post(event: str, position: float, **extra: Any) -> None:
            body = {**jf_hook(event, position, **extra), **double}
            assert httpx.post(url, json=body, timeout=10).status_code == 200

        post("PlaybackStart", 0)
        first = scrobble(fake, "start")
        assert first.json["episode"]["number"] == 1
        for position in (60, 85, 95, 105, 150, 185, 195):
            post("PlaybackProgress", position)
        post("PlaybackStop", 200, PlayedToCompletion="True")
        fake.wait_until(lambda: len(fake.history()) == 2, timeout=15)
    watched = sorted(
        entry.item.episode.number for entry in fake.history() if isinstance(entry.item, ShowEpisode)
    )
    assert watched == [1, 2]


def test_emby_webhooks_through_the_daemon(tmp_path: Path, fake: FakeTrakt) -> None:
    from tests.test_player_jellyfin import emby_hook

    secret = "emby-k3rv9b2nq8x1m4z7w5y6"
    players = (
        '[mpv]\nenabled = false\n\n[emby]\nenabled = true\nmode = "webhook"\n'
        f'secret = "{secret}"\nusers = ["alice"]\n'
    )
    home = Home.create(tmp_path, fake.url, players=players)
    log_in(fake, home)
    with Daemon(home) as daemon:
        daemon.wait_for_log("ready")
        url = f"http://127.0.0.1:{home.server_port}/emby/{secret}"
        for event, position in (("playback.start", 0.0), ("playback.pause", 100.0)):
            assert httpx.post(url, json=emby_hook(event, position), timeout=10).status_code == 200
        assert scrobble(fake, "stop").json["progress"] == pytest.approx(50.0, abs=1.0)
        wrong = url.replace(secret, "x" * len(secret))
        assert httpx.post(wrong, json=emby_hook("playback.stop", 190.0)).status_code == 404
        resume = emby_hook("playback.unpause", 100.0)
        assert httpx.post(url, json=resume, timeout=10).status_code == 200
        stop = emby_hook("playback.stop", 190.0, PlayedToCompletion=True)
        assert httpx.post(url, json=stop, timeout=10).status_code == 200
        fake.wait_until(lambda: len(fake.history()) == 1)
        assert secret not in daemon.stderr()


def test_a_config_reload_moves_and_closes_the_webhook_route(
    tmp_path: Path, fake: FakeTrakt
) -> None:
    def players(secret: str, enabled: bool = True) -> str:
        return (
            f"[mpv]\nenabled = false\n\n[jellyfin]\nenabled = {str(enabled).lower()}\n"
            f'mode = "webhook"\nsecret = "{secret}"\nusers = ["alice"]\n'
        )

    new_secret = "jf-rotated-0123456789ab"
    home = Home.create(tmp_path, fake.url, players=players(SECRET))
    log_in(fake, home)
    base = f"http://127.0.0.1:{home.server_port}/jellyfin/"

    def status(secret: str) -> int:
        return httpx.post(base + secret, json=jf_hook("ItemAdded", 0), timeout=10).status_code

    with Daemon(home) as daemon:
        daemon.wait_for_log("ready")
        assert status(SECRET) == 200
        mark = daemon.mark()
        home.write_config(fake.url, players=players(new_secret))
        daemon.wait_for_log("config reloaded: jellyfin.", since=mark)
        assert (status(SECRET), status(new_secret)) == (404, 200)
        mark = daemon.mark()
        home.write_config(fake.url, players=players(new_secret, enabled=False))
        daemon.wait_for_log("config reloaded: jellyfin.", since=mark)
        # No webhook player is left: the listener closes its port altogether.
        daemon.wait_for_log("stopped listening on", since=mark)
        with pytest.raises(httpx.ConnectError):
            status(new_secret)
        assert SECRET not in daemon.stderr() and new_secret not in daemon.stderr()


def test_fuzzed_webhooks_never_hurt_the_daemon(tmp_path: Path, fake: FakeTrakt) -> None:
    """1,000 broken or odd webhooks through the whole pipeline: each answered 200 or 400, no
    error logged (the odd plays it accepted go to Trakt), and a real play afterwards is taken."""
    import asyncio
    import random

    from tests.test_jellyfin_webhooks import (
        EMBY_SECRET,
        JF_SECRET,
        Seeded,
        _pipeline,
        webhook_request,
    )

    players = (
        f'[mpv]\nenabled = false\n\n[jellyfin]\nenabled = true\nmode = "webhook"\n'
        f'secret = "{JF_SECRET}"\nusers = ["alice"]\n\n[emby]\nenabled = true\n'
        f'mode = "webhook"\nsecret = "{EMBY_SECRET}"\nusers = ["alice"]\n'
    )
    home = Home.create(tmp_path, fake.url, players=players)
    log_in(fake, home)
    seeds = random.Random(20261206)
    with Daemon(home) as daemon:
        daemon.wait_for_log("ready")
        statuses: list[int] = []
        for _ in range(40):
            batch = [webhook_request(Seeded(seeds.getrandbits(64))) for _ in range(25)]
            statuses += asyncio.run(_pipeline(home.server_port, batch))
        assert len(statuses) == 1000 and set(statuses) <= {200, 400, 413}
        url = f"http://127.0.0.1:{home.server_port}/jellyfin/{JF_SECRET}"
        mark = daemon.mark()
        body = jf_hook("PlaybackStart", 0, DeviceId="after", DeviceName="After The Fuzz")
        assert httpx.post(url, json=body, timeout=10).status_code == 200
        daemon.wait_for_log(r"After The Fuzz \(alice\) plays The Matrix", since=mark)
        # The plays taken reach Trakt (POSTs a second apart, after what the fuzz queued).
        fake.wait_for(lambda r: r.path in ("/scrobble/start", "/scrobble/stop"), timeout=30)
        log = daemon.stderr()
        assert " ERROR " not in log and "Traceback" not in log, log[-3000:]
