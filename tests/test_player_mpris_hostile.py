"""Attacks on the MPRIS adapter from the session bus: any local program may claim an MPRIS name
and say anything. Each is played by `RawPlayer`, a bare D-Bus client of the test's own that
answers `GetAll` with whatever values it is given (wrong types included), or never.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from tests.mprisbus import (
    PATH,
    PLAYER,
    PREFIX,
    SessionBus,
    restart_bus,
    session_bus_fixture,
    start_bus,
    stop_bus,
)
from tests.realplayers import running, wait_until
from trakt_scrobbled.events import Ended, EndReason, Paused, Playing, Progressed, Seeked
from trakt_scrobbled.players.mpris import MprisPlayer

__all__ = ["session_bus_fixture"]

PROPERTIES = "org.freedesktop.DBus.Properties"


def v(value: object, signature: str = "s") -> Variant:
    return Variant(signature, value)


def metadata(
    url: str | None = None, title: str | None = None, length: Variant | None = None
) -> Variant:
    values: dict[str, Variant] = {"mpris:trackid": v("/track/1", "o")}
    if length is not None:
        values["mpris:length"] = length
    if url is not None:
        values["xesam:url"] = v(url)
    if title is not None:
        values["xesam:title"] = v(title)
    return v(values, "a{sv}")


class RawPlayer:
    """A fake MPRIS player: owns `org.mpris.MediaPlayer2.<name>`, answers GetAll from `props`."""

    def __init__(self, bus: MessageBus, name: str) -> None:
        self.bus = bus
        self.name = PREFIX + name
        self.props: dict[str, Variant] = {
            "PlaybackStatus": v("Stopped"),
            "Metadata": metadata(),
            "Position": v(0, "x"),
            "Rate": v(1.0, "d"),
        }
        self.silent = False
        self.get_all_calls = 0
        bus.add_message_handler(self._handle)

    def _handle(self, message: Message) -> Message | bool | None:
        if message.message_type is not MessageType.METHOD_CALL:
            return None
        if message.interface == PROPERTIES and message.member == "GetAll":
            self.get_all_calls += 1
            if self.silent:
                return True  # taken, never answered
            return Message.new_method_return(message, "a{sv}", [dict(self.props)])
        return None

    async def changed(self, **props: Variant) -> None:
        self.props.update(props)
        await self.signal(PROPERTIES, "PropertiesChanged", "sa{sv}as", PLAYER, props, [])

    async def signal(self, iface: str, member: str, sig: str, *body: Any) -> None:
        await self.bus.send(Message.new_signal(PATH, iface, member, sig, list(body)))


@contextlib.asynccontextmanager
async def raw_player(bus: SessionBus, name: str, **props: Variant) -> AsyncIterator[RawPlayer]:
    raw = await MessageBus(bus_address=bus.address).connect()
    try:
        player = RawPlayer(raw, name)
        player.props.update(props)
        await raw.request_name(player.name)
        yield player
    finally:
        raw.disconnect()


def adapter(bus: SessionBus, **kwargs: Any) -> MprisPlayer:
    return MprisPlayer(bus_address=bus.address, call_timeout=0.5, **kwargs)


async def test_garbage_metadata_is_one_note_and_no_play(session_bus: SessionBus) -> None:
    player = adapter(session_bus)
    async with running(player) as rec, raw_player(session_bus, "evil") as evil:
        await wait_until(lambda: len(player.connections()) == 1, what="followed")
        for bad in (
            metadata(url="file:///a/%00.mkv"),  # a NUL byte in the path
            metadata(url="file://attacker.example/etc/passwd"),  # someone else's file
            metadata(url="file:///x/%ff%fe.mkv"),  # not UTF-8
            v({"xesam:url": v(7, "i"), "xesam:title": v(["t"], "as")}, "a{sv}"),  # wrong types
            metadata(title="x" * 100_000),  # a title no film has
        ):
            await evil.changed(
                PlaybackStatus=v("Playing"),
                Metadata=bad,
                Position=v("soon"),
                Rate=v(float("nan"), "d"),
            )
        await wait_until(
            lambda: player.ignored_counts() == {"no usable xesam:url or title": 1},
            what="one note for the player",
        )
        assert player.connections()[0].detail == "ignored: gives no usable xesam:url or title"
        await asyncio.sleep(0.2)
        assert rec.events == []

        # The same player names a real file: it plays, length as a double and all.
        await evil.changed(
            Metadata=metadata(url="file:///films/The%20Matrix%20(1999).mkv", length=v(9e9, "d")),
            Position=v(12_000_000, "x"),
            Rate=v(1.0, "d"),
        )
        playing = await rec.wait_for(Playing)
        assert playing.media.path == "/films/The Matrix (1999).mkv"
        assert playing.duration == 9000.0
        assert playing.position == pytest.approx(12.0, abs=0.5)
        assert player.ignored_counts() == {}


async def test_a_player_that_never_answers_stalls_only_itself(session_bus: SessionBus) -> None:
    player = adapter(session_bus)
    async with (
        running(player) as rec,
        raw_player(session_bus, "mute") as mute,
        raw_player(session_bus, "fine") as fine,
    ):
        mute.silent = True
        await mute.changed(PlaybackStatus=v("Playing"), Metadata=metadata(title="Mute"))
        await fine.changed(PlaybackStatus=v("Playing"), Metadata=metadata(title="Fine"))
        playing = await rec.wait_for(Playing, timeout=2.0)
        assert playing.source == "mpris:fine"
        await wait_until(lambda: mute.get_all_calls >= 1, what="the mute player was asked")
        assert [e.source for e in rec.events] == ["mpris:fine"]


async def test_a_signal_flood_costs_a_few_reads(session_bus: SessionBus) -> None:
    player = adapter(session_bus)
    async with running(player) as rec, raw_player(session_bus, "loud") as loud:
        await loud.changed(PlaybackStatus=v("Playing"), Metadata=metadata(title="Loud"))
        await rec.wait_for(Playing)
        before = loud.get_all_calls
        for n in range(2000):
            await loud.changed(PlaybackStatus=v("Playing"))
            if n % 50 == 49:
                # dbus-fast's writer cannot take a full socket buffer (EAGAIN): let it drain.
                await asyncio.sleep(0.005)
        await loud.changed(PlaybackStatus=v("Stopped"))
        ended = await rec.wait_for(Ended)
        assert ended.reason is EndReason.STOPPED
        # Signals set a flag; each wake reads once, however many arrived meanwhile.
        assert loud.get_all_calls - before < 400
        assert [type(e) for e in rec.events] == [Playing, Ended]


async def test_no_other_client_can_speak_for_a_player(session_bus: SessionBus) -> None:
    """The bus stamps each signal's sender: signals from a client owning no followed MPRIS
    name are dropped, whatever path and interface they claim."""
    player = adapter(session_bus)
    async with (
        running(player) as rec,
        raw_player(session_bus, "real") as real,
    ):
        await real.changed(PlaybackStatus=v("Playing"), Metadata=metadata(title="Real"))
        await rec.wait_for(Playing)
        spoofer = await MessageBus(bus_address=session_bus.address).connect()
        try:
            forger = RawPlayer(spoofer, "unused")  # owns no name
            await forger.signal(PLAYER, "Seeked", "x", 3_000_000_000)
            await forger.signal(
                PROPERTIES,
                "PropertiesChanged",
                "sa{sv}as",
                PLAYER,
                {"PlaybackStatus": v("Stopped")},
                [],
            )
            # A marker from the real player: once it is handled, the forgeries were too.
            await real.signal(PLAYER, "Seeked", "x", 60_000_000)
            seeked = await rec.wait_for(Seeked)
            assert seeked.position == pytest.approx(60.0)
            assert [type(e) for e in rec.events] == [Playing, Seeked]
            assert forger.get_all_calls == 0
        finally:
            spoofer.disconnect()


async def test_a_crowd_of_players_is_capped(session_bus: SessionBus) -> None:
    player = adapter(session_bus, max_players=2)
    async with contextlib.AsyncExitStack() as stack:
        for n in range(4):
            await stack.enter_async_context(raw_player(session_bus, f"crowd{n}"))
        async with running(player):
            await wait_until(lambda: player.ignored_counts() == {"too many players": 2})
            assert len(player.connections()) == 2


async def test_a_player_that_leaves_mid_play_ends_as_gone(session_bus: SessionBus) -> None:
    player = adapter(session_bus)
    async with running(player) as rec:
        async with raw_player(session_bus, "brief") as brief:
            await brief.changed(
                PlaybackStatus=v("Playing"),
                Metadata=metadata(url="file:///m/a.mkv", length=v(10**8, "x")),
            )
            await rec.wait_for(Playing)
        ended = await rec.wait_for(Ended)
        assert ended.reason is EndReason.GONE
        await wait_until(lambda: player.connections() == [], what="dropped")


async def test_the_bus_going_away_ends_plays_and_the_adapter_comes_back() -> None:
    """A logout takes the session bus and its players with it; a new session brings both back
    at the same address (the systemd user bus is always `$XDG_RUNTIME_DIR/bus`)."""
    bus = start_bus()
    try:
        player = MprisPlayer(bus_address=f"unix:path={bus.folder / 'bus'}", reconnect=(0.05, 0.2))
        async with running(player) as rec:
            async with raw_player(bus, "first") as first:
                await first.changed(PlaybackStatus=v("Playing"), Metadata=metadata(title="One"))
                await rec.wait_for(Playing)
                bus.process.kill()
                bus.process.wait()
                ended = await rec.wait_for(Ended)
                assert ended.reason is EndReason.GONE
            (bus.folder / "bus").unlink(missing_ok=True)
            bus = restart_bus(bus)
            async with raw_player(bus, "second") as second:
                await second.changed(PlaybackStatus=v("Playing"), Metadata=metadata(title="Two"))
                again = await rec.wait_for(Playing, after=len(rec.events))
                assert again.source == "mpris:second"
    finally:
        stop_bus(bus)


async def test_the_safety_read_catches_a_seek_the_player_did_not_signal(
    session_bus: SessionBus,
) -> None:
    player = adapter(session_bus, check_interval=0.3)
    async with running(player) as rec, raw_player(session_bus, "quiet") as quiet:
        await quiet.changed(
            PlaybackStatus=v("Playing"),
            Metadata=metadata(title="Quiet", length=v(600_000_000, "x")),
            Position=v(10_000_000, "x"),
        )
        await rec.wait_for(Playing)
        progressed = await rec.wait_for(Progressed)  # the safety read, while playing
        assert progressed.position == pytest.approx(10.0, abs=1.0)
        quiet.props["Position"] = v(300_000_000, "x")  # no Seeked signal
        seeked = await rec.wait_for(Seeked)
        assert seeked.position == pytest.approx(300.0, abs=1.0)
        # Paused, there is no safety read: nothing wakes the adapter for an idle player.
        await quiet.changed(PlaybackStatus=v("Paused"))
        await rec.wait_for(Paused)
        calls = quiet.get_all_calls
        await asyncio.sleep(1.0)
        assert quiet.get_all_calls == calls
