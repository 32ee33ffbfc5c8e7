"""mpv end to end: a real headless mpv, the daemon as a process, the fake Trakt.

What Trakt sees is asserted on the fake's recorded requests; the daemon's own state is
asserted through its log and its database.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import Daemon, Home, log_in
from tests.fake_trakt import Episode, FakeTrakt, RecordedRequest
from tests.realplayers import (
    MediaFiles,
    MpvLauncher,
)
from trakt_scrobbled.events import Ids


@pytest.fixture
def fake() -> Iterator[FakeTrakt]:
    with FakeTrakt() as fake:
        fake.add_movie("The Matrix", 1999, trakt=481, imdb="tt0133093")
        fake.add_show(
            "Show Name", 2020, trakt=77, tvdb=81189, episodes=[Episode(1, 2, Ids(trakt=7702))]
        )
        yield fake


@pytest.fixture
def daemon(tmp_path: Path, fake: FakeTrakt, sock_dir: Path) -> Iterator[Daemon]:
    home = Home.create(
        tmp_path / "home",
        fake.url,
        players=f'[mpv]\nsockets = ["{sock_dir}/*.sock"]\n',
        extra="[scrobble]\nseek_debounce = 1.0\n",
    )
    log_in(fake, home)
    with Daemon(home) as d:
        d.wait_for_log("ready")
        yield d


def nth_scrobble(fake: FakeTrakt, verb: str, n: int, timeout: float = 10.0) -> RecordedRequest:
    return fake.wait_for(lambda r: r.path == f"/scrobble/{verb}", count=n, timeout=timeout)


def test_a_movie_start_pause_resume_seeks_and_end(
    daemon: Daemon, fake: FakeTrakt, mpv_launcher: MpvLauncher, media: MediaFiles
) -> None:
    mpv = mpv_launcher.start()  # started after the daemon: picked up as its socket appears
    mpv.control.loadfile(media.movie)
    start = nth_scrobble(fake, "start", 1)
    assert start.json["movie"]["ids"]["trakt"] == 481
    assert 1.0 <= start.json["progress"] < 5.0

    mpv.control.pause()
    pause = nth_scrobble(fake, "stop", 1)
    assert 1.0 <= pause.json["progress"] < 80.0
    assert fake.playback()[0].progress == pause.json["progress"]  # a resume point, no watch
    assert fake.history() == ()

    mpv.control.resume()
    nth_scrobble(fake, "start", 2)

    for target in (30.0, 50.0, 70.0, 90.0, 60.0):  # a burst of seeks
        mpv.control.seek(target)
    after_seeks = nth_scrobble(fake, "start", 3)
    assert after_seeks.json["progress"] == pytest.approx(40.0, abs=3.0)  # 60 s of 150
    time.sleep(2.0)  # the burst is over: nothing more may come of it
    assert len(fake.requests("/scrobble/start")) == 3

    mpv.control.set("speed", 100.0)  # to the end
    end = nth_scrobble(fake, "stop", 2, timeout=20)
    assert end.json["progress"] >= 99.0
    assert len(fake.history()) == 1
    time.sleep(1.5)
    assert len(fake.requests("/scrobble/stop")) == 2, "one watched scrobble, nothing after"


def test_an_episode_and_a_killed_mpv(
    daemon: Daemon, fake: FakeTrakt, mpv_launcher: MpvLauncher, media: MediaFiles
) -> None:
    first = mpv_launcher.start()
    second = mpv_launcher.start()  # two at once
    first.control.loadfile(media.episode)
    second.control.loadfile(media.movie, start=60.0)
    nth_scrobble(fake, "start", 2)
    starts = fake.requests("/scrobble/start")
    episode = next(r for r in starts if "episode" in r.json)
    assert (
        episode.json["episode"] == {"ids": {"trakt": 7702}}
        or episode.json["show"]["ids"]["tvdb"] == 81189
    )
    movie = next(r for r in starts if "movie" in r.json)
    assert movie.json["progress"] == pytest.approx(40.0, abs=3.0)
    time.sleep(1.5)
    second.kill()  # SIGKILL: no goodbye from mpv
    stop = nth_scrobble(fake, "stop", 1)
    assert "movie" in stop.json
    assert stop.json["progress"] == pytest.approx(41.0, abs=3.0)
    assert len(fake.requests("/scrobble/stop")) == 1  # the other mpv plays on


def test_an_unidentifiable_file_sends_nothing_and_says_why(
    daemon: Daemon, fake: FakeTrakt, mpv_launcher: MpvLauncher, media: MediaFiles, tmp_path: Path
) -> None:
    odd = tmp_path / "birthday party 2019 (phone).mkv"
    odd.write_bytes(media.movie.read_bytes())
    mpv = mpv_launcher.start()
    mpv.control.loadfile(odd)
    daemon.wait_for_log(r"not scrobbled: ")
    mpv.control.set("speed", 100.0)
    daemon.wait_for_log(r"birthday party")
    time.sleep(2.0)
    assert fake.requests("/scrobble") == []
