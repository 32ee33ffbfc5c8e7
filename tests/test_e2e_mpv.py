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
from tests.fake_trakt.catalogue import ShowEpisode
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
            "Show Name",
            2020,
            trakt=77,
            tvdb=81189,
            episodes=[Episode(1, 1, Ids(trakt=7701)), Episode(1, 2, Ids(trakt=7702))],
        )
        yield fake


@pytest.fixture
def daemon(tmp_path: Path, fake: FakeTrakt, sock_dir: Path) -> Iterator[Daemon]:
    home = Home.create(
        tmp_path / "home",
        fake.url,
        players=f'[mpv]\nsockets = ["{sock_dir}/*.sock"]\n',
        # An older config's key: still read, no longer used (seeks are starts at once).
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
    # At once, as soon as it is identified: no wait for the 1 % mark (1.5 s of 150).
    assert 0.0 <= start.json["progress"] < 1.0

    mpv.control.pause()
    pause = nth_scrobble(fake, "stop", 1)
    assert 1.0 <= pause.json["progress"] < 80.0
    assert fake.playback()[0].progress == pause.json["progress"]  # a resume point, no watch
    assert fake.history() == ()

    mpv.control.resume()
    nth_scrobble(fake, "start", 2)

    for target in (30.0, 50.0, 70.0, 90.0, 60.0):  # a burst of seeks
        mpv.control.seek(target)
    # Each seek is a start at once; the outbox keeps only the newest unsent one and POSTs
    # go 1 s apart, so the burst reaches Trakt as one or two starts, the last one right.
    last = fake.wait_for(
        lambda r: r.path == "/scrobble/start" and 38.0 <= r.json["progress"] <= 44.0,
        timeout=10,
    )
    assert last.json["progress"] == pytest.approx(40.0, abs=3.0)  # 60 s of 150
    time.sleep(2.0)  # the burst is over: nothing more may come of it
    starts = fake.requests("/scrobble/start")
    assert len(starts) <= 4 and starts[-1] is last

    mpv.control.set("speed", 100.0)  # to the end
    end = nth_scrobble(fake, "stop", 2, timeout=20)
    assert end.json["progress"] >= 99.0
    assert len(fake.history()) == 1
    time.sleep(1.5)
    assert len(fake.requests("/scrobble/stop")) == 2, "one watched scrobble, nothing after"


def test_a_two_episode_file_is_two_plays_each_watched_once(
    daemon: Daemon,
    fake: FakeTrakt,
    mpv_launcher: MpvLauncher,
    media: MediaFiles,
    tmp_path: Path,
) -> None:
    double = tmp_path / "Show.Name.S01E01-E02.720p.WEB.mkv"
    double.write_bytes(media.episode.read_bytes())  # 150 s: the middle is at 75 s
    mpv = mpv_launcher.start()
    mpv.control.loadfile(double, start=60.0)
    first = nth_scrobble(fake, "start", 1)
    assert first.json["show"]["ids"]["trakt"] == 77 and first.json["episode"]["number"] == 1
    assert first.json["progress"] == pytest.approx(80.0, abs=4.0)  # 60 s of E01's 75
    mpv.control.set("speed", 4.0)  # the middle in ~4 s, the end in ~23 s
    crossed = nth_scrobble(fake, "start", 2, timeout=20)
    assert crossed.json["episode"]["number"] == 2
    assert crossed.json["progress"] < 5.0  # E02 starts when the play head crosses the middle
    stop_e01 = nth_scrobble(fake, "stop", 1)
    assert stop_e01.json["episode"]["number"] == 1 and stop_e01.json["progress"] == 100.0
    end = nth_scrobble(fake, "stop", 2, timeout=40)
    assert end.json["episode"]["number"] == 2 and end.json["progress"] >= 99.0
    fake.wait_until(lambda: len(fake.history()) == 2)
    watched = sorted(
        (e.item.episode.season, e.item.episode.number)
        for e in fake.history()
        if isinstance(e.item, ShowEpisode)
    )
    assert watched == [(1, 1), (1, 2)], "each episode watched exactly once"
    time.sleep(1.5)
    assert len(fake.requests("/scrobble/stop")) == 2


def test_a_rewatch_closes_under_80_and_adds_nothing_to_history(
    daemon: Daemon, fake: FakeTrakt, mpv_launcher: MpvLauncher, media: MediaFiles
) -> None:
    mpv = mpv_launcher.start()
    mpv.control.loadfile(media.movie, start=140.0)
    nth_scrobble(fake, "stop", 1, timeout=20)  # played to the end: watched
    fake.wait_until(lambda: len(fake.history()) == 1)
    time.sleep(1.0)
    mpv.control.loadfile(media.movie, start=140.0)  # the same film again, within the window
    again = nth_scrobble(fake, "start", 2, timeout=20)
    assert again.json["movie"]["ids"]["trakt"] == 481  # Trakt shows it playing
    close = nth_scrobble(fake, "stop", 2, timeout=20)
    assert close.json["progress"] < 80.0, "closed, so 'watching now' does not dangle"
    time.sleep(1.5)
    assert len(fake.history()) == 1, "the rewatch adds nothing to history"
    assert fake.watching() is None


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
