"""The mpv adapter against a real headless mpv (skipped without mpv, failed in CI)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.realplayers import (
    EventRecorder,
    MediaFiles,
    MpvLauncher,
    MpvProcess,
    running,
    wait_until,
)
from trakt_scrobbled.clock import SystemClock
from trakt_scrobbled.events import (
    Ended,
    EndReason,
    Paused,
    Playing,
    Progressed,
    Resumed,
    Seeked,
)
from trakt_scrobbled.players.mpv import MpvPlayer

pytestmark = [pytest.mark.mpv, pytest.mark.timeout(60)]


def source_of(mpv: MpvProcess) -> str:
    return f"mpv:{mpv.socket_path}"


async def attached(player: MpvPlayer, *mpvs: MpvProcess) -> None:
    wanted = {source_of(m) for m in mpvs}
    await wait_until(
        lambda: wanted <= {c.source for c in player.connections()}, what=f"attached to {wanted}"
    )


async def play(rec: EventRecorder, mpv: MpvProcess, path: Path) -> Playing:
    start = len(rec.events)
    mpv.control.loadfile(path)
    return await rec.wait_for(Playing, source=source_of(mpv), after=start)


async def test_play_reports_path_title_and_duration(
    media: MediaFiles, mpv_launcher: MpvLauncher
) -> None:
    mpv = mpv_launcher.start()
    player = MpvPlayer([str(mpv.socket_path)])
    async with running(player) as rec:
        await attached(player, mpv)
        assert rec.events == []  # an idle mpv says nothing
        event = await play(rec, mpv, media.movie)
        assert rec.events[0] is event
        assert event.source == source_of(mpv)
        assert event.media is not None
        assert event.media.path == str(media.movie)
        assert event.media.title == media.movie.name  # mpv's media-title: the file name
        assert event.media.duration == pytest.approx(media.duration, abs=0.5)
        assert event.duration == pytest.approx(media.duration, abs=0.5)
        assert event.position is not None and event.position < 1.0
        assert (event.paused, event.speed) == (False, 1.0)
        [conn] = player.connections()
        assert conn.source == source_of(mpv)
        assert media.movie.name in conn.detail


async def test_pause_resume_and_speed(media: MediaFiles, mpv_launcher: MpvLauncher) -> None:
    mpv = mpv_launcher.start()
    player = MpvPlayer([str(mpv.socket_path)])
    async with running(player) as rec:
        await attached(player, mpv)
        await play(rec, mpv, media.movie)
        mpv.control.seek(30)
        await rec.wait_for(Seeked)
        mpv.control.pause()
        paused = await rec.wait_for(Paused)
        assert paused.position == pytest.approx(30.5, abs=1.0)
        mpv.control.resume()
        resumed = await rec.wait_for(Resumed)
        assert resumed.position == pytest.approx(paused.position, abs=0.2)
        mpv.control.set("speed", 2.0)
        faster = await rec.wait_for(Progressed, lambda e: e.speed == 2.0)
        assert faster.position is not None and resumed.position is not None
        # time-pos moves a frame at a time (0.1 s here), and may not have moved yet.
        assert faster.position >= resumed.position - 0.2


async def test_a_burst_of_seeks_reports_where_playback_landed(
    media: MediaFiles, mpv_launcher: MpvLauncher
) -> None:
    mpv = mpv_launcher.start("--pause")  # paused: positions are exact
    player = MpvPlayer([str(mpv.socket_path)])
    async with running(player) as rec:
        await attached(player, mpv)
        started = await play(rec, mpv, media.movie)
        assert started.paused
        for target in (60, 70, 80):
            mpv.control.seek(target)
        last = await rec.wait_for(Seeked, lambda e: e.position == pytest.approx(80, abs=0.2))
        seeks = [e for e in rec.events if isinstance(e, Seeked)]
        assert seeks[-1].position == last.position
        # mpv coalesces some seeks; under load it may report a restart twice (same position)
        assert 1 <= len({round(s.position or 0) for s in seeks}) <= 3
        for seek in seeks:
            assert any(seek.position == pytest.approx(t, abs=0.2) for t in (60, 70, 80))


async def test_playing_to_the_end_stops_with_eof_near_the_end(
    media: MediaFiles, mpv_launcher: MpvLauncher
) -> None:
    mpv = mpv_launcher.start("--speed=100")
    player = MpvPlayer([str(mpv.socket_path)])
    async with running(player) as rec:
        await attached(player, mpv)
        started = await play(rec, mpv, media.movie)
        assert started.speed == 100.0
        stop = await rec.wait_for(Ended)
        assert stop.reason is EndReason.EOF
        assert stop.position is not None
        assert 0.99 * media.duration <= stop.position <= media.duration


async def test_loading_another_file_replaces_the_item(
    media: MediaFiles, mpv_launcher: MpvLauncher
) -> None:
    mpv = mpv_launcher.start()
    player = MpvPlayer([str(mpv.socket_path)])
    async with running(player) as rec:
        await attached(player, mpv)
        await play(rec, mpv, media.movie)
        mpv.control.seek(20)
        await rec.wait_for(Seeked)
        second = await play(rec, mpv, media.episode)
        assert second.media is not None and second.media.path == str(media.episode)
        stops = [e for e in rec.events if isinstance(e, Ended)]
        assert len(stops) == 1
        assert rec.events.index(stops[0]) < rec.events.index(second)
        assert stops[0].reason is EndReason.REPLACED
        assert stops[0].position == pytest.approx(20, abs=1.5)
        mpv.control.stop()
        stopped = await rec.wait_for(Ended, after=rec.events.index(second))
        assert stopped.reason is EndReason.STOPPED


async def test_sigkill_mid_play_is_gone_with_the_last_position(
    media: MediaFiles, mpv_launcher: MpvLauncher
) -> None:
    mpv = mpv_launcher.start()
    player = MpvPlayer([str(mpv.socket_path)])
    async with running(player) as rec:
        await attached(player, mpv)
        await play(rec, mpv, media.movie)
        asked_at = time.monotonic()  # the adapter's sample at 40 s is no older than this
        mpv.control.seek(40)
        seek = await rec.wait_for(Seeked)
        mpv.kill()
        gone = await rec.wait_for(Ended)
        assert gone.reason is EndReason.GONE
        assert seek.position is not None and gone.position is not None
        # Extrapolated from the last sample while playing, never beyond what could have played
        # since the seek was asked for (not since the test heard of it: that is later).
        assert seek.position <= gone.position <= seek.position + (time.monotonic() - asked_at)
        await wait_until(lambda: player.connections() == [], what="detached")


async def test_quit_stops_with_reason_quit(media: MediaFiles, mpv_launcher: MpvLauncher) -> None:
    mpv = mpv_launcher.start()
    player = MpvPlayer([str(mpv.socket_path)])
    async with running(player) as rec:
        await attached(player, mpv)
        await play(rec, mpv, media.movie)
        mpv.control.seek(50)
        await rec.wait_for(Seeked)
        mpv.control.quit()
        stop = await rec.wait_for(Ended)
        assert stop.reason is EndReason.QUIT
        assert stop.position == pytest.approx(50.5, abs=1.5)
        assert mpv.wait() == 0
        await wait_until(lambda: player.connections() == [], what="detached")
        assert [type(e) for e in rec.events].count(Ended) == 1  # no GONE after the QUIT


async def test_keep_open_end_is_eof_not_a_pause(
    media: MediaFiles, mpv_launcher: MpvLauncher
) -> None:
    mpv = mpv_launcher.start("--keep-open=yes", "--speed=100")
    player = MpvPlayer([str(mpv.socket_path)])
    async with running(player) as rec:
        await attached(player, mpv)
        await play(rec, mpv, media.movie)
        stop = await rec.wait_for(Ended)
        assert stop.reason is EndReason.EOF
        assert stop.position is not None and stop.position >= 0.99 * media.duration
        assert Paused not in [type(e) for e in rec.events]
        assert mpv.control.get("eof-reached") is True  # mpv really is sitting at the end
        # The next file ends the kept-open one without a second STOP.
        await play(rec, mpv, media.episode)
        assert [type(e) for e in rec.events].count(Ended) == 1


async def test_a_missing_file_reports_nothing(
    media: MediaFiles, mpv_launcher: MpvLauncher, sock_dir: Path
) -> None:
    mpv = mpv_launcher.start()
    player = MpvPlayer([str(mpv.socket_path)])
    async with running(player) as rec:
        await attached(player, mpv)
        mpv.control.loadfile(sock_dir / "No.Such.Movie.2001.mkv")
        # mpv accepts the loadfile, then ends it with end-file(error) before file-loaded:
        # there was never a PLAY, so there is no STOP either.
        await play(rec, mpv, media.movie)
        assert [type(e) for e in rec.events] == [Playing]
        assert rec.of(Playing)[0].media.path == str(media.movie)


async def test_two_mpv_at_once_are_two_sources(
    media: MediaFiles, mpv_launcher: MpvLauncher, sock_dir: Path
) -> None:
    first = mpv_launcher.start()
    second = mpv_launcher.start()
    player = MpvPlayer([str(sock_dir / "*.sock")])
    async with running(player) as rec:
        await attached(player, first, second)
        a = await play(rec, first, media.movie)
        b = await play(rec, second, media.episode)
        assert a.source != b.source
        assert {a.source, b.source} == {c.source for c in player.connections()}
        first.control.stop()
        stop = await rec.wait_for(Ended)
        assert stop.source == a.source


async def test_attaches_to_a_playing_mpv_on_connect(
    media: MediaFiles, mpv_launcher: MpvLauncher
) -> None:
    mpv = mpv_launcher.start("--pause")
    mpv.control.loadfile(media.movie, start=42)
    mpv.control.wait_for("time-pos", lambda v: v is not None)
    player = MpvPlayer([str(mpv.socket_path)])
    async with running(player) as rec:
        found = await rec.wait_for(Playing)
        assert found.paused
        assert found.position == pytest.approx(42, abs=0.5)
        assert found.media is not None and found.media.path == str(media.movie)


async def test_play_starts_where_mpv_starts(media: MediaFiles, mpv_launcher: MpvLauncher) -> None:
    mpv = mpv_launcher.start()
    player = MpvPlayer([str(mpv.socket_path)])
    async with running(player) as rec:
        await attached(player, mpv)
        mpv.control.loadfile(media.movie, start=42)  # as a resumed watch-later position does
        started = await rec.wait_for(Playing)
        assert started.position == pytest.approx(42, abs=0.5)
        assert started.duration == pytest.approx(media.duration, abs=0.5)


async def test_an_mpv_started_later_is_attached_promptly(
    media: MediaFiles, mpv_launcher: MpvLauncher, sock_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = sock_dir / "later.sock"
    # A long backoff: only the folder watch can attach it quickly.
    player = MpvPlayer([str(path)], reconnect=(30.0, 30.0))
    caplog.set_level(logging.INFO, logger="trakt_scrobbled.players.mpv")
    async with running(player) as rec:
        await wait_until(lambda: "no socket at" in caplog.text, what="first attempt failed")
        mpv = await mpv_launcher.astart(socket_path=path)
        appeared = time.monotonic()
        await attached(player, mpv)
        took = time.monotonic() - appeared
        assert took < 2.0, f"attached {took:.3f} s after the socket appeared"
        await play(rec, mpv, media.movie)


class RecordingClock(SystemClock):
    """Real time, but remembers what the adapter slept for (its backoff schedule)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await super().sleep(seconds)


async def test_a_stale_socket_is_retried_until_mpv_starts_on_it(
    media: MediaFiles, mpv_launcher: MpvLauncher, sock_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = sock_dir / "stale.sock"
    with socket.socket(socket.AF_UNIX) as left_behind:
        left_behind.bind(str(path))  # closed without unlinking: what a dead mpv leaves
    clock = RecordingClock()
    player = MpvPlayer([str(path)], clock=clock, reconnect=(0.05, 0.2))
    caplog.set_level(logging.INFO, logger="trakt_scrobbled.players.mpv")
    async with running(player) as rec:
        backoff = [0.05, 0.1, 0.2, 0.2]
        await wait_until(
            lambda: [s for s in clock.sleeps if s <= 0.2][:4] == backoff, what="backoff"
        )
        failures = [r for r in caplog.records if "not available" in r.getMessage()]
        assert len(failures) == 1  # logged once, not once per attempt
        assert "stale" in failures[0].getMessage()
        mpv = await mpv_launcher.astart(socket_path=path)
        await attached(player, mpv)
        assert any("connected" in r.getMessage() for r in caplog.records)
        await play(rec, mpv, media.movie)


def library_threads() -> set[threading.Thread]:
    """Threads other than the loop's executor workers (which live as long as the loop)."""
    return {t for t in threading.enumerate() if not t.name.startswith("asyncio_")}


async def test_cancelling_detaches_without_stop_and_leaves_no_thread(
    media: MediaFiles, mpv_launcher: MpvLauncher, sock_dir: Path
) -> None:
    before = library_threads()
    mpv = mpv_launcher.start()
    player = MpvPlayer([str(mpv.socket_path), str(sock_dir / "absent" / "*.sock")])
    async with running(player) as rec:
        await attached(player, mpv)
        await play(rec, mpv, media.movie)
        assert library_threads() - before  # the library and watchdog threads are there
    count = len(rec.events)
    await wait_until(lambda: library_threads() == before, what="threads gone")
    assert player.connections() == []
    assert Ended not in [type(e) for e in rec.events]
    assert mpv.process.poll() is None  # detaching leaves mpv alone
    assert mpv.control.get("path") == str(media.movie)
    assert len(rec.events) == count


async def test_cancelling_does_not_hang_on_a_stopped_mpv(
    media: MediaFiles, mpv_launcher: MpvLauncher
) -> None:
    mpv = mpv_launcher.start()
    player = MpvPlayer([str(mpv.socket_path)])
    rec = EventRecorder()
    task = asyncio.create_task(player.run(rec))
    rec.task = task
    await attached(player, mpv)
    await play(rec, mpv, media.movie)
    mpv.process.send_signal(signal.SIGSTOP)  # Ctrl+Z on a terminal mpv: it never answers
    began = time.monotonic()
    task.cancel()
    try:
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(task), timeout=5)
    finally:
        mpv.kill()  # a regression then fails here instead of hanging the loop's teardown
    assert time.monotonic() - began < 1.0
    assert Ended not in [type(e) for e in rec.events]


async def test_progress_is_sampled_not_sent_per_frame(
    media: MediaFiles, mpv_launcher: MpvLauncher
) -> None:
    mpv = mpv_launcher.start()
    player = MpvPlayer([str(mpv.socket_path)], progress_interval=0.5)
    async with running(player) as rec:
        await attached(player, mpv)
        started = await play(rec, mpv, media.movie)
        began = time.monotonic()
        after = rec.events.index(started)
        for n in range(1, 4):
            await rec.wait_for_event(
                lambda e: sum(isinstance(x, Progressed) for x in rec.events[after:]) >= n,  # noqa: B023
                after=after,
            )
        elapsed = time.monotonic() - began
        progress = [e for e in rec.events[after:] if isinstance(e, Progressed)]
        # 10 frames a second for ~1.5 s: a per-frame report would be ~15 events.
        assert len(progress) <= 4
        assert elapsed >= 1.0
        positions = [e.position or 0.0 for e in progress]
        steps = [b - a for a, b in itertools.pairwise(positions)]
        assert all(0.2 <= s <= 1.0 for s in steps), positions
