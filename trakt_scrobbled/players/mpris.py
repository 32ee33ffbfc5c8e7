"""The MPRIS adapter: every desktop player on the session D-Bus (VLC, Celluloid, Haruna,
SMPlayer, mpv with the mpv-mpris plugin...).

MPRIS pushes what matters: `PlaybackStatus`, `Metadata` and `Rate` in `PropertiesChanged`, and
jumps in `Seeked`. `Position` is never signalled; it advances at `Rate` between signals. So the
adapter reads the player's properties (one `GetAll`) when a signal says something changed, and,
while a player plays, once every `check_interval` as a safety net for a player that forgets a
signal; never on a short poll. A paused or idle player costs no wake-up at all.

Each player is one D-Bus connection (its unique name), whatever names it owns (VLC owns
`org.mpris.MediaPlayer2.vlc` and `...vlc.instance<pid>`); it is followed while it owns one. Its
source is ``mpris:<the most specific name it had when first seen>``. Signals are only taken from
that connection: the bus stamps the sender, so no other client can speak for a player.

dbus-fast is imported only here, and this module only when `[mpris]` is on, so the daemon
does not carry a D-Bus library it does not use.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from trakt_scrobbled.clock import Clock, SystemClock
from trakt_scrobbled.events import (
    Ended,
    EndReason,
    MediaInfo,
    Paused,
    PlayerEvent,
    Playing,
    Progressed,
    Resumed,
    Seeked,
)
from trakt_scrobbled.logonce import LogOnce
from trakt_scrobbled.players import Connection, Emit, Route, emit_safely
from trakt_scrobbled.players.playhead import Playhead
from trakt_scrobbled.players.ticker import Ticker

if TYPE_CHECKING:
    from dbus_fast import Message
    from dbus_fast.aio import MessageBus

log = logging.getLogger(__name__)

PREFIX = "org.mpris.MediaPlayer2."
OBJECT_PATH = "/org/mpris/MediaPlayer2"
ROOT_IFACE = "org.mpris.MediaPlayer2"
PLAYER_IFACE = "org.mpris.MediaPlayer2.Player"
PROPERTIES_IFACE = "org.freedesktop.DBus.Properties"
BUS_NAME = "org.freedesktop.DBus"
BUS_PATH = "/org/freedesktop/DBus"

CALL_TIMEOUT = 2.0
"""Seconds a player (or the bus) may take to answer; a hung player stalls only itself."""
CHECK_INTERVAL = 60.0
"""Seconds between safety reads while a player plays (none while paused or stopped)."""
MAX_PLAYERS = 32
"""Players followed at once: a client owning thousands of MPRIS names costs nothing more."""
MAX_TEXT = 4096
"""Characters kept of a URL or title; longer ones are not a real file or title."""
EOF_MARGIN = 2.0
"""Seconds before the end within which a stop counts as the end of the file."""
SEEK_TOLERANCE = 1.0
"""Seconds a `Seeked` position must differ from the play head to count as a jump."""
DRIFT = 3.0
"""Seconds the read position may differ from the extrapolated one before it counts as a seek."""

_WATCHED = frozenset({"PlaybackStatus", "Metadata", "Rate", "Position"})
"""Properties whose change needs a fresh read; Volume, CanSeek and the like need none."""

_MATCH_RULES = (
    f"type='signal',sender='{BUS_NAME}',interface='{BUS_NAME}',member='NameOwnerChanged',"
    f"arg0namespace='{PREFIX.rstrip('.')}'",
    f"type='signal',interface='{PROPERTIES_IFACE}',member='PropertiesChanged',"
    f"path='{OBJECT_PATH}',arg0='{PLAYER_IFACE}'",
    f"type='signal',interface='{PLAYER_IFACE}',member='Seeked',path='{OBJECT_PATH}'",
)


class MprisError(Exception):
    """The session bus cannot be reached or talked to."""


class Status(StrEnum):
    PLAYING = "Playing"
    PAUSED = "Paused"
    STOPPED = "Stopped"


# --- what a player says, checked ----------------------------------------------------------------


def _plain(value: object) -> object:
    """A D-Bus variant's value (dbus-fast hands variants inside dicts as `Variant`)."""
    return getattr(value, "value", value) if type(value).__name__ == "Variant" else value


def _text(value: object) -> str | None:
    value = _plain(value)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        return None
    if "\x00" in value:
        return None
    return value


def _seconds(value: object) -> float | None:
    """Microseconds (int64 by the spec; some players send a double) as seconds, if sane."""
    value = _plain(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value) / 1_000_000
    if not math.isfinite(seconds) or seconds < 0 or seconds > 1e7:  # > 115 days: garbage
        return None
    return seconds


def _rate(value: object) -> float | None:
    value = _plain(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    rate = float(value)
    return rate if math.isfinite(rate) and 0 < rate <= 100 else None


def file_path(url: str) -> str | None:
    """The local path of a `file://` URL, percent-decoded; None for any other URL."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
        return None
    path = unquote(parts.path, errors="strict") if _decodes(parts.path) else None
    if not path or not path.startswith("/") or "\x00" in path:
        return None
    return os.path.normpath(path)


def _decodes(quoted: str) -> bool:
    try:
        unquote(quoted, errors="strict")
    except UnicodeDecodeError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Item:
    """What a player plays, from its `Metadata`; `key` tells one item from the next."""

    key: tuple[str | None, str | None, str | None]
    media: MediaInfo

    @property
    def duration(self) -> float | None:
        return self.media.duration


def item_of(metadata: object) -> Item | None:
    """The item `Metadata` describes, or None when it names neither a file nor a title.

    A `file://` URL becomes a local path; another URL (a stream) is kept as it is, like mpv
    reports one; a player that gives only a title is identified by the title.
    """
    metadata = _plain(metadata)
    if not isinstance(metadata, dict):
        return None
    url = _text(metadata.get("xesam:url"))
    title = _text(metadata.get("xesam:title"))
    trackid = _text(metadata.get("mpris:trackid"))
    path: str | None = None
    if url is not None:
        if url[:5].lower() == "file:":
            path = file_path(url)
        elif "://" in url:
            path = url
    if path is None and title is None:
        return None
    duration = _seconds(metadata.get("mpris:length"))
    media = MediaInfo(path=path, title=title, duration=duration or None)
    return Item(key=(trackid, path, None if path else title), media=media)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One `GetAll` of the Player interface, each value checked."""

    status: Status | None
    item: Item | None
    position: float | None
    rate: float | None

    @classmethod
    def parse(cls, props: object) -> Snapshot:
        if not isinstance(props, dict):
            return cls(None, None, None, None)
        raw_status = _plain(props.get("PlaybackStatus"))
        status = Status(raw_status) if raw_status in ("Playing", "Paused", "Stopped") else None
        return cls(
            status=status,
            item=item_of(props.get("Metadata")),
            position=_seconds(props.get("Position")),
            rate=_rate(props.get("Rate")),
        )


# --- which players ------------------------------------------------------------------------------


def player_part(bus_name: str) -> str:
    return bus_name.removeprefix(PREFIX)


def name_matches(bus_name: str, patterns: Iterable[str]) -> bool:
    """A pattern matches the name after the MPRIS prefix, or its first part (`vlc` matches
    `vlc.instance1234`, as MPRIS names a second instance of a player)."""
    part = player_part(bus_name)
    first = part.split(".", 1)[0]
    return any(fnmatch.fnmatchcase(part, p) or fnmatch.fnmatchcase(first, p) for p in patterns)


def source_name(names: Iterable[str]) -> str:
    """The most specific name (the longest; ties alphabetically), for a stable source."""
    return max(names, key=lambda n: (len(n), n))


def listening_sockets(pid: int) -> set[str]:
    """The unix socket paths process `pid` has open (reads /proc; empty when it cannot)."""
    inodes: set[str] = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        if not inodes:
            return set()
        paths: set[str] = set()
        with open("/proc/net/unix", encoding="utf-8", errors="replace") as table:
            next(table, None)
            for line in table:
                fields = line.split(maxsplit=7)
                if len(fields) == 8 and fields[6] in inodes and fields[7].startswith("/"):
                    paths.add(fields[7].rstrip("\n"))
        return paths
    except OSError:
        return set()


def socket_followed(pid: int | None, mpv_sockets: Sequence[str]) -> bool:
    """Whether process `pid` listens on a socket that `[mpv] sockets` (paths or globs) names:
    the mpv adapter follows that mpv already, and MPRIS must not report its plays twice."""
    if pid is None or not mpv_sockets:
        return False
    patterns = [os.path.abspath(os.path.expanduser(p)) for p in mpv_sockets]
    return any(
        fnmatch.fnmatchcase(path, pattern)
        for path in listening_sockets(pid)
        for pattern in patterns
    )


def session_bus_address(env: Mapping[str, str]) -> str | None:
    """`DBUS_SESSION_BUS_ADDRESS`, else the systemd user bus at `$XDG_RUNTIME_DIR/bus`."""
    address = env.get("DBUS_SESSION_BUS_ADDRESS", "").strip()
    if address:
        return address
    runtime = env.get("XDG_RUNTIME_DIR", "").strip()
    if runtime and os.path.isabs(runtime):
        return f"unix:path={os.path.join(runtime, 'bus')}"
    return None


# --- the bus --------------------------------------------------------------------------------


class _Bus:
    """The few calls the adapter makes, each bounded by `CALL_TIMEOUT`, errors translated."""

    def __init__(self, bus: MessageBus, timeout: float) -> None:
        self.bus = bus
        self._timeout = timeout

    async def call(
        self,
        destination: str,
        path: str,
        interface: str,
        member: str,
        signature: str = "",
        body: Sequence[object] = (),
    ) -> list[Any]:
        from dbus_fast import Message, MessageType
        from dbus_fast.errors import DBusError

        message = Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=list(body),
        )
        try:
            async with asyncio.timeout(self._timeout):
                reply = await self.bus.call(message)
        except TimeoutError as err:
            raise MprisError(
                f"{destination} did not answer {member} in {self._timeout:g} s"
            ) from err
        except (DBusError, OSError, EOFError, ValueError, RuntimeError) as err:
            raise MprisError(f"{member} to {destination} failed: {err}") from err
        if reply is None or reply.message_type is MessageType.ERROR:
            error = getattr(reply, "error_name", None) or "no reply"
            raise MprisError(f"{member} to {destination}: {error}")
        return list(reply.body)

    async def bus_call(self, member: str, signature: str = "", *args: object) -> list[Any]:
        return await self.call(BUS_NAME, BUS_PATH, BUS_NAME, member, signature, args)

    async def get_all(self, owner: str, interface: str = PLAYER_IFACE) -> object:
        body = await self.call(owner, OBJECT_PATH, PROPERTIES_IFACE, "GetAll", "s", (interface,))
        return body[0] if body else None

    async def pid_of(self, owner: str) -> int | None:
        try:
            body = await self.bus_call("GetConnectionUnixProcessID", "s", owner)
        except MprisError:
            return None
        pid = body[0] if body else None
        return pid if isinstance(pid, int) and pid > 0 else None


async def connect(address: str, wait: float = CALL_TIMEOUT) -> MessageBus:
    """A connection to the bus at `address`, or MprisError saying why not."""
    from dbus_fast.aio import MessageBus
    from dbus_fast.errors import AuthError, DBusError

    try:
        async with asyncio.timeout(wait):
            return await MessageBus(bus_address=address).connect()
    except TimeoutError as err:
        raise MprisError(f"the session bus at {address} did not answer") from err
    except (OSError, AuthError, DBusError, EOFError, ValueError) as err:
        raise MprisError(f"cannot reach the session bus at {address}: {err}") from err


# --- the adapter ------------------------------------------------------------------------------


class MprisPlayer:
    """Follows every MPRIS player on the session bus that the patterns let through.

    `players` (patterns to follow; empty = all) and `ignore` (patterns never followed) match
    the bus name after `org.mpris.MediaPlayer2.`, or its first part. An mpv that listens on a
    socket `mpv_sockets` names is left to the mpv adapter.
    """

    name = "mpris"

    def __init__(
        self,
        *,
        bus_address: str | None,
        players: Sequence[str] = (),
        ignore: Sequence[str] = (),
        mpv_sockets: Sequence[str] = (),
        clock: Clock | None = None,
        check_interval: float = CHECK_INTERVAL,
        call_timeout: float = CALL_TIMEOUT,
        reconnect: tuple[float, float] = (0.5, 30.0),
        max_players: int = MAX_PLAYERS,
    ) -> None:
        self._address = bus_address
        self._players = tuple(players)
        self._ignore = tuple(ignore)
        self._mpv_sockets = tuple(mpv_sockets)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.check_interval = check_interval
        self._call_timeout = call_timeout
        self._reconnect = reconnect
        self._max_players = max_players
        self._links: dict[str, _Link] = {}
        """By unique name: every MPRIS connection seen, followed or not (then `skipped`)."""
        self._by_pid: dict[tuple[int, str], _Link] = {}
        """The connection followed per process and player: VLC opens two connections, one
        owning `vlc`, the other `vlc.instance<pid>`; they are one player."""
        self._once = LogOnce(log)

    # --- Player protocol ---------------------------------------------------------------------

    def routes(self) -> tuple[Route, ...]:
        return ()

    def connections(self) -> list[Connection]:
        return sorted(
            (
                Connection(link.source, link.describe())
                for link in self._links.values()
                if link.skipped is None and link.twin is None
            ),
            key=lambda c: c.source,
        )

    def ignored_counts(self) -> Mapping[str, int]:
        counts: dict[str, int] = {}
        for link in self._links.values():
            reason = link.skipped or ("no usable xesam:url or title" if link.unusable else None)
            if reason is not None:
                counts[reason] = counts.get(reason, 0) + 1
        return counts

    async def run(self, emit: Emit) -> None:
        low, high = self._reconnect
        delay = low
        try:
            while True:
                if self._address is None:
                    self._once.once(
                        "address",
                        logging.WARNING,
                        "mpris: no session bus (DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR "
                        "are unset); looking again every %.0f s",
                        high,
                    )
                    await self.clock.sleep(high)
                    continue
                try:
                    bus = await connect(self._address, self._call_timeout)
                except MprisError as err:
                    self._once.once("connect", logging.WARNING, "mpris: %s; retrying", err)
                    await self.clock.sleep(delay)
                    delay = min(high, delay * 2)
                    continue
                delay = low
                if self._once.clear("connect"):
                    log.info("mpris: connected to the session bus")
                try:
                    await self._follow(_Bus(bus, self._call_timeout), emit)
                except MprisError as err:
                    log.warning("mpris: %s; connecting again", err)
                    bus.disconnect()
                    # The bus went away, and the players on it with it (a logout).
                    await self._drop_all(gone=True)
                except BaseException:
                    bus.disconnect()
                    raise
                await self.clock.sleep(low)
        finally:
            await self._drop_all(gone=False)

    # --- following the bus -------------------------------------------------------------------

    async def _follow(self, bus: _Bus, emit: Emit) -> None:
        """Watch names come and go, and every player's signals, until the bus goes away."""
        handler = self._handler(bus, emit)
        bus.bus.add_message_handler(handler)
        try:
            for rule in _MATCH_RULES:
                await bus.bus_call("AddMatch", "s", rule)
            (names,) = await bus.bus_call("ListNames")
            for name in sorted(n for n in names if isinstance(n, str) and n.startswith(PREFIX)):
                try:
                    (owner,) = await bus.bus_call("GetNameOwner", "s", name)
                except MprisError:
                    continue  # gone meanwhile
                if isinstance(owner, str) and owner:
                    self._acquired(bus, emit, name, owner)
            log.info("mpris: watching the session bus for players")
            try:
                await bus.bus.wait_for_disconnect()  # type: ignore[no-untyped-call]
            except Exception as err:  # whatever broke the library's reader: the bus is gone
                raise MprisError(f"the session bus connection broke: {err!r}") from err
        finally:
            bus.bus.remove_message_handler(handler)
        raise MprisError("the session bus closed the connection")

    def _handler(self, bus: _Bus, emit: Emit) -> Callable[[Message], bool]:
        def on_message(message: Message) -> bool:
            # Runs inside dbus-fast's reader: never raise, never block, never answer.
            try:
                self._on_message(bus, emit, message)
            except Exception:
                log.exception("mpris: a D-Bus message could not be handled")
            return False

        return on_message

    def _on_message(self, bus: _Bus, emit: Emit, message: Message) -> None:
        from dbus_fast import MessageType

        if message.message_type is not MessageType.SIGNAL:
            return
        body = message.body
        if message.member == "NameOwnerChanged" and message.sender == BUS_NAME:
            if len(body) != 3 or not all(isinstance(v, str) for v in body):
                return
            name, old, new = body
            if not name.startswith(PREFIX):
                return
            if old:
                self._released(name, old)
            if new:
                self._acquired(bus, emit, name, new)
            return
        link = self._links.get(message.sender or "")
        if link is None or message.path != OBJECT_PATH:
            return
        if message.member == "PropertiesChanged" and message.interface == PROPERTIES_IFACE:
            if len(body) == 3 and body[0] == PLAYER_IFACE:
                changed = body[1] if isinstance(body[1], dict) else {}
                invalidated = body[2] if isinstance(body[2], list) else []
                if _WATCHED.intersection(changed) or _WATCHED.intersection(invalidated):
                    link.poke()
        elif message.member == "Seeked" and message.interface == PLAYER_IFACE:
            position = _seconds(body[0]) if len(body) == 1 else None
            if position is not None:
                link.poke(seeked=position)

    def _acquired(self, bus: _Bus, emit: Emit, name: str, owner: str) -> None:
        link = self._links.get(owner)
        if link is not None:
            link.names.add(name)
            return
        followed = sum(1 for lk in self._links.values() if lk.skipped is None)
        link = _Link(self, bus, emit, owner, name)
        self._links[owner] = link
        if followed >= self._max_players:
            link.skipped = "too many players"
            self._once.once(
                "too-many",
                logging.WARNING,
                "mpris: already following %d players; not following %s",
                self._max_players,
                name,
            )
            return
        link.start()

    def _released(self, name: str, owner: str) -> None:
        link = self._links.get(owner)
        if link is None:
            return
        link.names.discard(name)
        if not link.names:
            del self._links[owner]
            if link.claim is not None and self._by_pid.get(link.claim) is link:
                del self._by_pid[link.claim]
            link.gone()

    def claim(self, link: _Link, pid: int | None) -> _Link | None:
        """The link already following this player of process `pid`, else None after `link`
        takes it. The player is the first part of the name: `vlc` of `vlc.instance1234`."""
        if pid is None:
            return None
        key = (pid, player_part(min(link.names)).split(".", 1)[0])
        twin = self._by_pid.get(key)
        if twin is not None and twin is not link:
            return twin
        self._by_pid[key] = link
        link.claim = key
        return None

    async def _drop_all(self, *, gone: bool) -> None:
        links = list(self._links.values())
        self._links.clear()
        self._by_pid.clear()
        for link in links:
            if gone:
                link.gone()
            else:
                link.detach()
        await asyncio.gather(*(link.wait() for link in links), return_exceptions=True)

    async def decide(self, link: _Link, pid: int | None) -> str | None:
        """Why `link` is not followed, or None to follow it."""
        names = sorted(link.names)
        if any(name_matches(n, self._ignore) for n in names):
            return "in [mpris] ignore"
        if self._players and not any(name_matches(n, self._players) for n in names):
            return "not in [mpris] players"
        if not self._mpv_sockets:
            return None
        followed = await asyncio.to_thread(socket_followed, pid, self._mpv_sockets)
        return "followed by [mpv]" if followed else None


class _Link:
    """One player (one D-Bus connection) and what it plays.

    Signals only raise flags and wake `serve`, which reads the player (one `GetAll`) and
    reasons on the loop, one wake at a time: a flood of signals costs one read, never a queue.
    """

    def __init__(self, adapter: MprisPlayer, bus: _Bus, emit: Emit, owner: str, name: str) -> None:
        self._adapter = adapter
        self._bus = bus
        self._emit = emit
        self.owner = owner
        self.names = {name}
        self.source = f"mpris:{player_part(name)}"
        self.skipped: str | None = None
        self.twin: _Link | None = None
        """Another connection of the same process, followed instead of this one."""
        self.claim: tuple[int, str] | None = None
        self.unusable = False
        self._clock = adapter.clock
        self._wake = asyncio.Event()
        self._wake.set()  # the first read: it may be playing already
        self._refresh = True
        self._seeked: float | None = None
        self._tick = False
        self._gone = False
        self._item: Item | None = None
        self._paused = False
        self._playhead = Playhead(self._clock)
        self._ticker = Ticker(
            self._clock, adapter.check_interval, self._tick_due, f"{self.source} check"
        )
        self._task: asyncio.Task[None] | None = None
        self._once = LogOnce(log)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._serve(), name=f"mpris {self.owner}"
        )

    def describe(self) -> str:
        if self.unusable and self._item is None:
            return "ignored: gives no usable xesam:url or title"
        if self._item is None:
            return "idle"
        verb = "paused" if self._paused else "playing"
        media = self._item.media
        label = os.path.basename(media.path) if media.path else media.title
        return f"{verb}: {label or '?'}"

    # --- signals (on the loop, from the bus reader) ------------------------------------------

    def poke(self, *, seeked: float | None = None) -> None:
        if seeked is not None:
            self._seeked = seeked
        else:
            self._refresh = True
        self._wake.set()

    def _tick_due(self) -> None:
        self._tick = True
        self._refresh = True
        self._wake.set()

    def gone(self) -> None:
        """The player left the bus (quit, killed, crashed): its play ends here."""
        self._gone = True
        self._wake.set()

    def detach(self) -> None:
        """The daemon stops following: no event, the play is not over."""
        if self._task is not None:
            self._task.cancel()

    async def wait(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # --- the loop ----------------------------------------------------------------------------

    async def _serve(self) -> None:
        try:
            pid = await self._bus.pid_of(self.owner)
            if not self._gone:
                self.twin = self._adapter.claim(self, pid)
                if self.twin is not None:
                    log.debug("mpris: %s is %s again", self.owner, self.twin.source)
                    return
                skipped = await self._adapter.decide(self, pid)
                self.source = f"mpris:{player_part(source_name(self.names))}"
                if skipped is not None:
                    self.skipped = skipped
                    log.info("mpris: not following %s (%s)", self.source, skipped)
                    return
                log.info("mpris: following %s", self.source)
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._gone:
                    self._end(EndReason.GONE)
                    log.info("mpris: %s left", self.source)
                    return
                await self._step()
                self._ticker.switch(self._moving())
        finally:
            await self._ticker.close()

    async def _step(self) -> None:
        refresh, seeked, tick = self._refresh, self._seeked, self._tick
        self._refresh, self._seeked, self._tick = False, None, False
        if not refresh:
            if seeked is not None:
                self._seek_to(seeked)
            return
        try:
            props = await self._bus.get_all(self.owner)
        except MprisError as err:
            self._once.once("read", logging.WARNING, "mpris: %s: %s", self.source, err)
            if seeked is not None:
                self._seek_to(seeked)
            return
        if self._once.clear("read"):
            log.info("mpris: %s answers again", self.source)
        if self._gone:
            return  # left while we asked: the loop ends the play
        self._apply(Snapshot.parse(props), seeked=seeked is not None, tick=tick)

    def _apply(self, snap: Snapshot, *, seeked: bool, tick: bool) -> None:
        active = snap.status in (Status.PLAYING, Status.PAUSED)
        item = snap.item if active else None
        if self._item is not None and (item is None or item.key != self._item.key):
            self._end(EndReason.REPLACED if item is not None else EndReason.STOPPED)
        if active and snap.item is None:
            self.unusable = True
            self._once.once(
                "unusable",
                logging.INFO,
                "mpris: %s plays something with no usable xesam:url or title; ignored",
                self.source,
            )
            return
        if item is None:
            return
        self.unusable = False
        paused = snap.status is Status.PAUSED
        if self._item is None:
            self._start(item, snap, paused)
            return
        learned = False
        if item.duration is not None and item.duration != self._playhead.duration:
            # VLC and mpv-mpris send the length in a second Metadata, once they know it.
            self._item = item
            learned = self._playhead.duration is None
            self._playhead.duration = item.duration
        # Where the play head should be by extrapolation, before anything changes it.
        expected = self._estimate()
        sped = snap.rate is not None and snap.rate != self._playhead.speed
        if snap.rate is not None and sped:
            self._playhead.rebase(self._moving())  # what ran so far ran at the old rate
            self._playhead.speed = snap.rate
        if paused != self._paused:
            self._playhead.rebase(self._moving())
            self._paused = paused
            self._playhead.remember(snap.position)
            at = self._estimate()
            self._send(Paused(self.source, at) if paused else Resumed(self.source, at))
            return
        self._playhead.remember(snap.position)
        now = self._estimate()
        moved = 0.0 if expected is None or now is None else abs(now - expected)
        if now is not None and moved > (SEEK_TOLERANCE if seeked else DRIFT):
            self._send(Seeked(self.source, now))
        elif tick or learned or sped:
            self._progressed()

    def _seek_to(self, position: float) -> None:
        """A `Seeked` signal: a jump, unless it lands where the play head is anyway (VLC
        signals one as playback starts)."""
        if self._item is None:
            return
        expected = self._estimate()
        self._playhead.remember(position)
        if expected is None or abs(position - expected) > SEEK_TOLERANCE:
            self._send(Seeked(self.source, position))

    def _start(self, item: Item, snap: Snapshot, paused: bool) -> None:
        self._item = item
        self._paused = paused
        self._playhead.reset()
        self._playhead.duration = item.duration
        self._playhead.speed = snap.rate or 1.0
        self._playhead.remember(snap.position if snap.position is not None else 0.0)
        self._send(
            Playing(
                self.source,
                item.media,
                position=self._estimate() or 0.0,
                duration=item.duration,
                paused=paused,
                speed=self._playhead.speed,
            )
        )

    def _end(self, reason: EndReason) -> None:
        if self._item is None:
            return
        position = self._estimate()
        duration = self._playhead.duration
        if (
            reason is not EndReason.GONE
            and duration is not None
            and position is not None
            and position >= duration - EOF_MARGIN
        ):
            reason, position = EndReason.EOF, duration
        self._item = None
        self._paused = False
        self._send(Ended(self.source, position, reason))

    def _moving(self) -> bool:
        return self._item is not None and not self._paused

    def _estimate(self) -> float | None:
        return self._playhead.estimate(self._moving())

    def _progressed(self) -> None:
        position = self._estimate()
        if position is not None:
            self._send(
                Progressed(self.source, position, self._playhead.duration, self._playhead.speed)
            )

    def _send(self, event: PlayerEvent) -> None:
        emit_safely(self._emit, event)


# --- doctor -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Seen:
    """One MPRIS player on the bus, as `doctor` reports it."""

    name: str
    identity: str | None
    status: str | None
    usable: str | None
    """`url`, `title` or None (nothing playing, or nothing usable: see `playing`)."""
    playing: bool
    error: str | None = None


async def survey(address: str, wait: float = CALL_TIMEOUT) -> list[Seen]:
    """Every MPRIS player on the bus at `address`, and whether it says what it plays."""
    raw = await connect(address, wait)
    bus = _Bus(raw, wait)
    try:
        (names,) = await bus.bus_call("ListNames")
        seen: list[Seen] = []
        for name in sorted(n for n in names if isinstance(n, str) and n.startswith(PREFIX)):
            try:
                props = await bus.get_all(name)
                root = await bus.get_all(name, ROOT_IFACE)
            except MprisError as err:
                seen.append(Seen(name, None, None, None, False, str(err)))
                continue
            snap = Snapshot.parse(props)
            identity = _text(root.get("Identity")) if isinstance(root, dict) else None
            usable = None
            if snap.item is not None:
                usable = "url" if snap.item.media.path else "title"
            seen.append(
                Seen(
                    name,
                    identity,
                    None if snap.status is None else str(snap.status),
                    usable,
                    snap.status in (Status.PLAYING, Status.PAUSED),
                )
            )
        return seen
    finally:
        raw.disconnect()
