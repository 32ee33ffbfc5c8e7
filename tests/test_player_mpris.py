"""The MPRIS adapter against real players on a private session bus: VLC (as an unprivileged
user when the tests run as root) and mpv with the mpv-mpris plugin.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.mprisbus import (
    SessionBus,
    VlcLauncher,
    bus_client,
    mpris_mpv_fixture,
    session_bus_fixture,
    vlc_launcher_fixture,
)
from tests.realplayers import (
    EventRecorder,
    MediaFiles,
    MpvLauncher,
    media_fixture,
    mpv_launcher_fixture,
    running,
    sock_dir_fixture,
    summary,
    wait_until,
)
from trakt_scrobbled.events import (
    Ended,
    EndReason,
    Paused,
    Playing,
    Progressed,
    Resumed,
    Seeked,
)
from trakt_scrobbled.players.mpris import MprisPlayer

__all__ = [
    "media_fixture",
    "mpris_mpv_fixture",
    "mpv_launcher_fixture",
    "session_bus_fixture",
    "sock_dir_fixture",
    "vlc_launcher_fixture",
]

pytestmark = [pytest.mark.slow]

WAIT = 10.0
"""Seconds for a player to react: VLC starts in about a second, slower on a busy machine."""


async def known_duration(rec: EventRecorder, playing: Playing) -> float | None:
    if playing.duration is not None:
        return playing.duration
    progressed = await rec.wait_for(Progressed, lambda e: e.duration is not None, timeout=WAIT)
    return progressed.duration


def adapter(bus: SessionBus, **kwargs: object) -> MprisPlayer:
    return MprisPlayer(bus_address=bus.address, **kwargs)  # type: ignore[arg-type]


# --- VLC --------------------------------------------------------------------------------------


async def test_vlc_started_after_the_adapter_play_pause_seek_resume_stop(
    session_bus: SessionBus, vlc_launcher: VlcLauncher, media: MediaFiles
) -> None:
    files = vlc_launcher.media(media)
    player = adapter(session_bus)
    async with running(player) as rec, bus_client(session_bus) as client:
        await wait_until(lambda: player.connections() == [], what="adapter up")
        vlc = vlc_launcher.start(files.movie)
        name = await vlc.ready(client)
        playing = await rec.wait_for(Playing, timeout=WAIT)
        # VLC's file URL is percent-encoded; the path is the file's own.
        assert playing.media.path == str(files.movie)
        assert playing.paused is False
        # The length comes with the Playing or, once VLC knows it, in a Progressed.
        assert await known_duration(rec, playing) == pytest.approx(media.duration, abs=1)
        assert playing.source.startswith("mpris:vlc")
        assert [c.source for c in player.connections()] == [playing.source]

        await asyncio.sleep(1.0)
        await client.player(name, "Pause")
        paused = await rec.wait_for(Paused, timeout=WAIT)
        assert paused.position is not None and 0 < paused.position < 10

        await client.player(name, "Play")
        resumed = await rec.wait_for(Resumed, timeout=WAIT)
        assert resumed.position == pytest.approx(paused.position, abs=0.5)

        # (VLC applies a seek made while paused only once playing again: seek while playing.)
        await client.set_position(name, 100.0)
        seeked = await rec.wait_for(Seeked, timeout=WAIT)
        assert seeked.position == pytest.approx(100.0, abs=1.0)

        await asyncio.sleep(1.0)
        await client.player(name, "Stop")
        ended = await rec.wait_for(Ended, timeout=WAIT)
        assert ended.reason is EndReason.STOPPED
        assert ended.position == pytest.approx(101.0, abs=1.0)
        assert [summary(e)[0] for e in rec.events if not isinstance(e, Progressed)] == [
            Playing,
            Paused,
            Resumed,
            Seeked,
            Ended,
        ]
        assert player.connections()[0].detail == "idle"


async def test_vlc_end_of_file_then_killed(
    session_bus: SessionBus, vlc_launcher: VlcLauncher, media: MediaFiles
) -> None:
    files = vlc_launcher.media(media)
    player = adapter(session_bus)
    async with running(player) as rec, bus_client(session_bus) as client:
        vlc = vlc_launcher.start(files.episode)
        name = await vlc.ready(client)
        await rec.wait_for(Playing, timeout=WAIT)
        await client.set_position(name, media.duration - 1.5)
        ended = await rec.wait_for(Ended, timeout=WAIT)
        assert ended.reason is EndReason.EOF
        assert ended.position == pytest.approx(media.duration, abs=0.1)

        # Played again, then killed: the play ends as GONE when its name leaves the bus.
        mark = len(rec.events)
        await client.player(name, "OpenUri", "s", files.episode.as_uri())
        await rec.wait_for(Playing, timeout=WAIT, after=mark)
        vlc.kill()
        gone = await rec.wait_for(Ended, timeout=WAIT, after=mark)
        assert gone.reason is EndReason.GONE
        await wait_until(lambda: player.connections() == [], what="VLC dropped")


async def test_vlc_already_playing_when_the_adapter_starts(
    session_bus: SessionBus, vlc_launcher: VlcLauncher, media: MediaFiles
) -> None:
    files = vlc_launcher.media(media)
    async with bus_client(session_bus) as client:
        vlc = vlc_launcher.start(files.movie)
        name = await vlc.ready(client)
        await client.wait_status(name, "Playing")
        await client.set_position(name, 30.0)
        await client.wait_position(name, 29.5)  # VLC applies the seek after the call returns
        await client.player(name, "Pause")
        await client.wait_status(name, "Paused")
        await client.wait_position(name, 29.5)
        player = adapter(session_bus)
        async with running(player) as rec:
            playing = await rec.wait_for(Playing, timeout=WAIT)
            assert playing.paused is True
            assert playing.position == pytest.approx(30.0, abs=1.0)
            assert player.connections()[0].detail.startswith("paused: ")


# --- mpv with mpv-mpris -----------------------------------------------------------------------


async def test_mpv_mpris_play_pause_seek_stop_and_end_of_file(
    session_bus: SessionBus, mpv_launcher: MpvLauncher, mpris_mpv: str, media: MediaFiles
) -> None:
    player = adapter(session_bus)
    async with running(player) as rec:
        # With the file on its command line: mpv-mpris 0.7.1 (Debian 12) says Stopped for a
        # file loaded into an idle mpv until the first pause, so a start there is missed.
        mpv = await mpv_launcher.astart(mpris_mpv, str(media.movie))
        playing = await rec.wait_for(Playing, timeout=WAIT)
        assert playing.media.path == str(media.movie)
        assert playing.media.title == media.movie.name
        assert await known_duration(rec, playing) == pytest.approx(media.duration, abs=1)
        assert playing.source == "mpris:mpv"

        mpv.control.pause()
        await rec.wait_for(Paused, timeout=WAIT)
        mpv.control.seek(60)
        seeked = await rec.wait_for(Seeked, timeout=WAIT)
        assert seeked.position == pytest.approx(60.0, abs=1.0)
        mpv.control.resume()
        await rec.wait_for(Resumed, timeout=WAIT)
        # Between signals the position runs at Rate: at 2x, 1 s of wall time is 2 s of film.
        mpv.control.set("speed", 2.0)
        faster = await rec.wait_for(Progressed, lambda e: e.speed == 2.0, timeout=WAIT)
        await asyncio.sleep(1.0)
        mpv.control.stop()
        stopped = await rec.wait_for(Ended, timeout=WAIT)
        assert stopped.reason is EndReason.STOPPED
        assert stopped.position is not None
        assert stopped.position - faster.position == pytest.approx(2.0, abs=0.5)
        mpv.control.set("speed", 1.0)

        # Loaded into the idle mpv: mpv-mpris 0.7.1 says Stopped until a pause toggles.
        mark = len(rec.events)
        mpv.control.command("loadfile", str(media.movie), "replace", "start=145,pause=yes")
        again = await rec.wait_for(Playing, timeout=WAIT, after=mark)
        assert again.paused is True
        mpv.control.resume()
        await rec.wait_for(Resumed, timeout=WAIT, after=mark)
        ended = await rec.wait_for(Ended, timeout=WAIT, after=mark)
        assert ended.reason is EndReason.EOF
        assert ended.position == pytest.approx(media.duration, abs=0.1)


async def test_two_players_at_once_and_mpv_killed(
    session_bus: SessionBus,
    vlc_launcher: VlcLauncher,
    mpv_launcher: MpvLauncher,
    mpris_mpv: str,
    media: MediaFiles,
) -> None:
    files = vlc_launcher.media(media)
    player = adapter(session_bus)
    async with running(player) as rec, bus_client(session_bus) as client:
        vlc = vlc_launcher.start(files.movie)
        mpv = await mpv_launcher.astart(mpris_mpv, str(media.episode))
        vlc_name = await vlc.ready(client)
        first = await rec.wait_for(Playing, timeout=WAIT)
        second = await rec.wait_for(
            Playing, timeout=WAIT, source=None, after=rec.events.index(first) + 1
        )
        by_source = {first.source: first, second.source: second}
        assert sorted(p.media.path or "" for p in by_source.values()) == sorted(
            [str(files.movie), str(media.episode)]
        )
        vlc_source = next(s for s, p in by_source.items() if p.media.path == str(files.movie))
        mpv_source = next(s for s in by_source if s != vlc_source)
        await wait_until(lambda: len(player.connections()) == 2, what="both players listed")

        await client.player(vlc_name, "Pause")
        paused = await rec.wait_for(Paused, timeout=WAIT)
        assert paused.source == vlc_source

        mark = len(rec.events)
        mpv.kill()
        gone = await rec.wait_for(Ended, timeout=WAIT, after=mark)
        assert (gone.source, gone.reason) == (mpv_source, EndReason.GONE)
        await wait_until(lambda: len(player.connections()) == 1, what="mpv dropped")
        assert not [e for e in rec.events[mark:] if e.source == vlc_source]


# --- which players ----------------------------------------------------------------------------


async def test_an_mpv_the_ipc_adapter_follows_is_left_to_it(
    session_bus: SessionBus,
    mpv_launcher: MpvLauncher,
    mpris_mpv: str,
    media: MediaFiles,
    sock_dir: Path,
) -> None:
    player = adapter(session_bus, mpv_sockets=[f"{sock_dir}/*.sock"])
    async with running(player) as rec:
        await mpv_launcher.astart(mpris_mpv, str(media.movie))
        await wait_until(
            lambda: player.ignored_counts() == {"followed by [mpv]": 1}, what="mpv skipped"
        )
        await asyncio.sleep(0.5)
        assert rec.events == []
        assert player.connections() == []


async def test_ignore_wins_and_players_restricts(
    session_bus: SessionBus, mpv_launcher: MpvLauncher, mpris_mpv: str, media: MediaFiles
) -> None:
    ignoring = adapter(session_bus, ignore=["mpv"])
    only_vlc = adapter(session_bus, players=["vlc"])
    async with running(ignoring) as rec1, running(only_vlc) as rec2:
        await mpv_launcher.astart(mpris_mpv, str(media.movie))
        await wait_until(lambda: ignoring.ignored_counts() == {"in [mpris] ignore": 1})
        await wait_until(lambda: only_vlc.ignored_counts() == {"not in [mpris] players": 1})
        assert rec1.events == rec2.events == []
