"""The mpv adapter: follows any number of mpv instances through their JSON IPC sockets.

mpv has no push of the playback position that is cheap: `time-pos` changes once per video
frame. So it is never observed; the position is asked for (`get_property`) at each transition
and every `progress_interval` while playing, and extrapolated in between. Everything mpv says
arrives on python-mpv-jsonipc's threads and is handed to the event loop untouched; all the
reasoning happens on the loop, one message at a time per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import glob
import logging
import os
import socket
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import python_mpv_jsonipc
from watchdog.events import FileCreatedEvent, FileMovedEvent, FileSystemEventHandler
from watchdog.observers import Observer

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
from trakt_scrobbled.players import Connection, Emit, Route, emit_safely
from trakt_scrobbled.players.playhead import Playhead
from trakt_scrobbled.players.ticker import Ticker

log = logging.getLogger(__name__)

COMMAND_TIMEOUT = 2.0
"""Seconds one IPC command may take; the library's default (120 s) would stall a connection."""

RESCAN_INTERVAL = 30.0
WATCHED_RESCAN_INTERVAL = 120.0
"""Seconds between rescans when every folder is watched (inotify reports new sockets)."""
STALE_RECHECK = 600.0
"""Seconds between tries of a stale socket file; its re-creation wakes us earlier."""
_QUICK_RETRIES = 2.0
"""Backoff delay after which a refused connection waits for the socket to be recreated."""
"""Fallback re-scan for socket folders that did not exist yet (watchdog cannot watch those)."""

_EVENTS = ("start-file", "file-loaded", "end-file", "seek", "playback-restart", "idle")
_OBSERVED = ("pause", "speed", "duration", "eof-reached")
SEEK_LANDED = 1.0
"""Seconds playback may land off a seek's target before the landing is reported as a seek too."""

_END_REASONS = {
    "eof": EndReason.EOF,
    "stop": EndReason.STOPPED,
    "quit": EndReason.QUIT,
    "error": EndReason.ERROR,
}
_CONNECT_ERRORS = (OSError, python_mpv_jsonipc.MPVError)


class _State(StrEnum):
    IDLE = "idle"
    LOADING = "loading"
    """`start-file` seen: nothing reported until the file is loaded (a missing file never is)."""
    STARTING = "starting"
    """`file-loaded` seen; PLAY waits for the first `playback-restart`.

    By then the duration is known (it comes first) and time-pos is where playback really
    starts (`--start`, a resumed watch-later position), not 0.
    """
    PLAYING = "playing"
    """PLAY was emitted (paused or not): a STOP is owed."""
    ENDED = "ended"
    """`--keep-open` reached the end: STOP(EOF) was emitted, the file is still loaded."""


@dataclass(frozen=True, slots=True)
class _MpvEvent:
    name: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class _PropertyChange:
    name: str
    value: object


@dataclass(frozen=True, slots=True)
class _Tick:
    """Time for a PROGRESS sample."""


@dataclass(frozen=True, slots=True)
class _Sync:
    """Just connected: find out whether something is already playing."""


@dataclass(frozen=True, slots=True)
class _Closed:
    """The socket closed (mpv quit, crashed or was killed)."""


_Message = _MpvEvent | _PropertyChange | _Tick | _Sync | _Closed


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class _SocketPatterns:
    """The configured sockets: literal paths are always followed, globs as files appear."""

    literal: frozenset[str]
    globs: tuple[str, ...]

    @classmethod
    def parse(cls, sockets: Sequence[str]) -> _SocketPatterns:
        paths = [os.path.abspath(os.path.expanduser(s)) for s in sockets]
        return cls(
            literal=frozenset(p for p in paths if not glob.has_magic(p)),
            globs=tuple(dict.fromkeys(p for p in paths if glob.has_magic(p))),
        )

    def matches(self, path: str) -> bool:
        return path in self.literal or any(fnmatch.fnmatchcase(path, g) for g in self.globs)

    def folders(self) -> set[str]:
        """The folders to watch; glob characters in a folder part are expanded."""
        found = {os.path.dirname(p) for p in self.literal}
        for pattern in self.globs:
            folder = os.path.dirname(pattern)
            if glob.has_magic(folder):
                found.update(d for d in glob.glob(folder) if os.path.isdir(d))
            else:
                found.add(folder)
        return found

    def existing_sockets(self) -> set[str]:
        return {p for g in self.globs for p in glob.glob(g) if _is_socket(p)}


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


class _SocketAppeared(FileSystemEventHandler):
    """Runs on watchdog's thread: filters cheaply, hands matching paths to the loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        patterns: _SocketPatterns,
        callback: Any,
    ) -> None:
        self._loop = loop
        self._patterns = patterns
        self._callback = callback

    def on_created(self, event: Any) -> None:
        self._offer(event.src_path)

    def on_moved(self, event: Any) -> None:
        self._offer(event.dest_path)

    def _offer(self, raw: str | bytes) -> None:
        path = os.fsdecode(raw)
        if self._patterns.matches(path):
            with contextlib.suppress(RuntimeError):  # the loop is closing
                self._loop.call_soon_threadsafe(self._callback, path)


@dataclass(slots=True)
class _FolderWatches:
    """Which folders watchdog watches, by inode, so that a recreated folder is watched anew."""

    watches: dict[str, tuple[Any, int]] = field(default_factory=dict)
    reported_missing: set[str] = field(default_factory=set)

    def update(self, observer: Any, handler: _SocketAppeared, folders: set[str]) -> None:
        for folder in list(self.watches):
            if folder not in folders:
                self._drop(observer, folder)
        for folder in sorted(folders):
            try:
                inode = os.stat(folder).st_ino
            except OSError:
                self._drop(observer, folder)
                if folder not in self.reported_missing:
                    self.reported_missing.add(folder)
                    log.info(
                        "mpv: folder %s does not exist; looking again every %.0f s",
                        folder,
                        RESCAN_INTERVAL,
                    )
                continue
            known = self.watches.get(folder)
            if known is not None and known[1] == inode:
                continue
            self._drop(observer, folder)
            try:
                watch = observer.schedule(
                    handler, folder, event_filter=[FileCreatedEvent, FileMovedEvent]
                )
            except OSError as err:
                if folder not in self.reported_missing:
                    self.reported_missing.add(folder)
                    log.warning("mpv: cannot watch %s: %s", folder, err)
                continue
            self.reported_missing.discard(folder)
            self.watches[folder] = (watch, inode)

    def _drop(self, observer: Any, folder: str) -> None:
        known = self.watches.pop(folder, None)
        if known is not None:
            with contextlib.suppress(KeyError, OSError):
                observer.unschedule(known[0])


def _close_client(client: Any) -> None:
    """Disconnect, even from an mpv that is stopped (Ctrl+Z) and will never answer.

    The library only half-closes its socket and then joins its reader thread, which stays
    blocked in recv() until mpv reacts: shutting the read side down too wakes it at once.
    """
    transport = getattr(getattr(client, "mpv_inter", None), "socket", None)
    sock = getattr(transport, "socket", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    client.terminate()


def _stop_observer(observer: Any) -> None:
    observer.stop()
    if observer.is_alive():
        observer.join()


class MpvPlayer:
    """Follows mpv instances through their IPC sockets (`--input-ipc-server`).

    `sockets` are paths or glob patterns; each socket found is one source, ``mpv:<path>``.
    """

    name = "mpv"

    def __init__(
        self,
        sockets: Sequence[str],
        *,
        clock: Clock | None = None,
        progress_interval: float = 15.0,
        reconnect: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        self._patterns = _SocketPatterns.parse(sockets)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._progress_interval = progress_interval
        self._reconnect = reconnect
        self._watchers: dict[str, _SocketWatcher] = {}
        self._links: dict[str, _Link] = {}

    def ignored_counts(self) -> Mapping[str, int]:
        return {}

    def routes(self) -> tuple[Route, ...]:
        return ()

    def connections(self) -> list[Connection]:
        return [Connection(link.source, link.describe()) for _, link in sorted(self._links.items())]

    async def run(self, emit: Emit) -> None:
        # A module global of the library, hence set here rather than at import.
        python_mpv_jsonipc.TIMEOUT = COMMAND_TIMEOUT
        loop = asyncio.get_running_loop()
        observer: Any = Observer()
        handler = _SocketAppeared(loop, self._patterns, lambda path: self._appeared(path, emit))
        folders = _FolderWatches()
        try:
            await asyncio.to_thread(observer.start)
            while True:
                # Folders are watched before anything is tried, so no socket slips between.
                found = await asyncio.to_thread(self._rescan, observer, handler, folders)
                for path in sorted(self._patterns.literal):
                    self._follow(path, emit, literal=True)
                for path in sorted(found):
                    self._follow(path, emit, literal=False)
                # A watched folder reports new sockets by itself; the rescan only catches
                # folders that do not exist yet, or were deleted and made again.
                missing = bool(folders.reported_missing)
                await self._clock.sleep(RESCAN_INTERVAL if missing else WATCHED_RESCAN_INTERVAL)
        finally:
            watchers = list(self._watchers.values())
            for watcher in watchers:
                watcher.task.cancel()
            await asyncio.gather(*(w.task for w in watchers), return_exceptions=True)
            self._watchers.clear()
            self._links.clear()
            await asyncio.to_thread(_stop_observer, observer)

    def _rescan(self, observer: Any, handler: _SocketAppeared, folders: _FolderWatches) -> set[str]:
        """Runs in a worker thread: (re)watch folders, list sockets matching the globs."""
        folders.update(observer, handler, self._patterns.folders())
        return self._patterns.existing_sockets()

    def _appeared(self, path: str, emit: Emit) -> None:
        watcher = self._watchers.get(path)
        if watcher is not None:
            watcher.poke()
        elif path in self._patterns.literal or _is_socket(path):
            self._follow(path, emit, literal=path in self._patterns.literal)

    def _follow(self, path: str, emit: Emit, *, literal: bool) -> None:
        if path not in self._watchers:
            self._watchers[path] = _SocketWatcher(self, path, emit, literal=literal)

    def _attached(self, link: _Link) -> None:
        self._links[link.path] = link

    def _detached(self, link: _Link) -> None:
        if self._links.get(link.path) is link:
            del self._links[link.path]

    def _forget(self, watcher: _SocketWatcher) -> None:
        if self._watchers.get(watcher.path) is watcher:
            del self._watchers[watcher.path]


class _SocketWatcher:
    """One socket path: connect, follow until it closes, retry with backoff."""

    def __init__(self, player: MpvPlayer, path: str, emit: Emit, *, literal: bool) -> None:
        self.path = path
        self._player = player
        self._emit = emit
        self._literal = literal
        self._wake = asyncio.Event()
        self.task = asyncio.create_task(self._run(), name=f"mpv:{path}")

    def poke(self) -> None:
        """The socket file was (re)created: try now rather than at the end of the backoff."""
        self._wake.set()

    async def _run(self) -> None:
        player = self._player
        first, cap = player._reconnect
        delay = first
        failing = False
        while True:
            self._wake.clear()
            link = _Link(self.path, player._clock, self._emit, player._progress_interval)
            try:
                await link.open()
            except _CONNECT_ERRORS as err:
                if isinstance(err, FileNotFoundError) and not self._literal:
                    player._forget(self)  # a glob match that is gone for good
                    return
                if not failing:
                    failing = True
                    if isinstance(err, FileNotFoundError):
                        log.info(
                            "mpv: no socket at %s yet: start mpv with --input-ipc-server=%s "
                            "(watching for it)",
                            self.path,
                            self.path,
                        )
                    else:
                        log.info("mpv: %s not available (%s); waiting", self.path, _why(err))
                # A socket file nobody listens on (mpv died) is recreated by the next mpv,
                # and inotify pokes us then: after a few quick tries, only wait for that.
                quiet = isinstance(err, ConnectionRefusedError) and delay >= _QUICK_RETRIES
                poked = await self._sleep_or_wake(STALE_RECHECK if quiet else delay)
                # Right after the socket appears mpv may not listen yet: retry soon.
                delay = min(first, 0.05) if poked else min(delay * 2, cap)
                continue
            failing = False
            delay = first
            log.info("mpv: connected to %s", self.path)
            player._attached(link)
            try:
                await link.serve()
            except Exception:
                player._detached(link)
                log.exception("mpv: following %s failed; reconnecting", self.path)
                await self._sleep_or_wake(first)
            else:
                log.info("mpv: %s disconnected", self.path)
            finally:
                player._detached(link)

    async def _sleep_or_wake(self, seconds: float) -> bool:
        sleeper = asyncio.ensure_future(self._player._clock.sleep(seconds))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            done, _ = await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
        return waker in done


def _why(err: BaseException) -> str:
    if isinstance(err, FileNotFoundError):
        return "no socket"
    if isinstance(err, ConnectionRefusedError):
        return "stale socket, mpv not running"
    return f"{type(err).__name__}: {err}"


class _Link:
    """One connection to one mpv, and what it is playing.

    Callbacks from the library (its threads) only post messages; `serve` handles them in
    order on the loop, asking mpv for what it needs through `asyncio.to_thread`.
    """

    def __init__(self, path: str, clock: Clock, emit: Emit, progress_interval: float) -> None:
        self.path = path
        self.source = f"mpv:{path}"
        self._clock = clock
        self._emit = emit
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[_Message] = asyncio.Queue()
        self._client: Any = None
        self._closing = False
        self._state = _State.IDLE
        self._title: str | None = None
        self._paused = False
        self._playhead = Playhead(clock)
        self._seeking = False
        self._stop_pending = False
        self._stop_position: float | None = None
        self._tick_queued = False
        self._ticker = Ticker(clock, progress_interval, self._tick_due, f"{self.source} progress")

    def describe(self) -> str:
        if self._state is _State.PLAYING:
            verb = "paused" if self._paused else "playing"
            return f"{verb}: {self._title or '?'}"
        return "idle"

    # --- library threads: hand over, never block, never call the library ---------------------

    def _post(self, message: _Message) -> None:
        if self._closing:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed
            self._loop.call_soon_threadsafe(self._queue.put_nowait, message)

    def _on_event(self, data: Any) -> None:
        reason = data.get("reason") if isinstance(data, dict) else None
        name = data.get("event") if isinstance(data, dict) else None
        self._post(_MpvEvent(str(name), reason if isinstance(reason, str) else None))

    def _on_property(self, name: str, value: object) -> None:
        self._post(_PropertyChange(name, value))

    def _on_quit(self) -> None:
        self._post(_Closed())

    # --- connection --------------------------------------------------------------------------

    def _connect(self) -> Any:
        # Constructed in two steps so that a failed attempt (no socket, a stale one, mpv not
        # answering) can be cleaned up: the constructor starts a thread before it connects,
        # which would otherwise linger until garbage collection.
        client = python_mpv_jsonipc.MPV.__new__(python_mpv_jsonipc.MPV)
        try:
            client.__init__(start_mpv=False, ipc_socket=self.path, quit_callback=self._on_quit)
            for event in _EVENTS:
                client.bind_event(event, self._on_event)
            for prop in _OBSERVED:
                client.bind_property_observer(prop, self._on_property)
        except BaseException:
            with contextlib.suppress(Exception):
                _close_client(client)
            raise
        return client

    async def open(self) -> None:
        opening = asyncio.ensure_future(asyncio.to_thread(self._connect))
        try:
            self._client = await asyncio.shield(opening)
        except asyncio.CancelledError:
            self._closing = True
            with contextlib.suppress(Exception):
                client = await opening
                await asyncio.to_thread(_close_client, client)
            raise

    async def serve(self) -> None:
        """Follow mpv until the socket closes; cancelling detaches without any STOP."""
        self._queue.put_nowait(_Sync())
        try:
            while True:
                message = await self._queue.get()
                if isinstance(message, _Closed):
                    await self._gone()
                    return
                await self._handle(message)
                self._ticker.switch(self._playing())
        finally:
            await self._ticker.close()
            self._closing = True
            await asyncio.to_thread(_close_client, self._client)

    async def _gone(self) -> None:
        # The close is reported on the reader thread, events on the library's event thread:
        # events mpv sent just before closing (end-file on quit) may still be in flight.
        # Joining that thread, then draining, keeps them in order.
        await asyncio.to_thread(_close_client, self._client)
        self._closing = True
        while not self._queue.empty():
            message = self._queue.get_nowait()
            if not isinstance(message, _Closed):
                await self._handle(message)
        self._flush_stop(EndReason.STOPPED)
        if self._state is _State.PLAYING:
            self._stop(EndReason.GONE, self._estimate())
        self._state = _State.IDLE

    def _tick_due(self) -> None:
        if not self._tick_queued:
            self._tick_queued = True
            self._queue.put_nowait(_Tick())

    def _query_sync(self, names: Sequence[str]) -> list[object]:
        values: list[object] = []
        for name in names:
            try:
                values.append(self._client.command("get_property", name))
            except python_mpv_jsonipc.MPVError:
                values.append(None)
            except OSError:  # closed (BrokenPipeError) or timed out: the rest would fail too
                break
        return values + [None] * (len(names) - len(values))

    async def _query(self, *names: str) -> list[object]:
        return await asyncio.to_thread(self._query_sync, names)

    async def _sample(self) -> float | None:
        """The current position, remembered for extrapolation."""
        (position,) = await self._query("time-pos")
        self._remember(position)
        return self._estimate()

    # --- the state machine -------------------------------------------------------------------

    async def _handle(self, message: _Message) -> None:
        match message:
            case _MpvEvent(name, reason):
                await self._on_mpv_event(name, reason)
            case _PropertyChange(name, value):
                await self._on_property_change(name, value)
            case _Tick():
                self._tick_queued = False
                if self._playing():
                    position = await self._sample()
                    if position is not None:
                        self._progressed(position)
            case _Sync():
                await self._on_sync()

    async def _on_mpv_event(self, name: str, reason: str | None) -> None:
        if self._stop_pending:
            self._flush_stop(EndReason.REPLACED if name == "start-file" else EndReason.STOPPED)
        match name:
            case "start-file":
                self._state = _State.LOADING
                self._playhead.reset()
                self._seeking = False
            case "file-loaded":
                if self._state in (_State.IDLE, _State.LOADING):
                    self._state = _State.STARTING
            case "playback-restart":
                # LOADING too: connected between file-loaded and this, so missed the former.
                if self._state in (_State.STARTING, _State.LOADING):
                    await self._start()
                elif self._state is _State.PLAYING and self._seeking:
                    # Where playback landed; said again only if not where the seek said.
                    self._seeking = False
                    expected = self._estimate()
                    position = await self._sample()
                    if position is not None and (
                        expected is None or abs(position - expected) > SEEK_LANDED
                    ):
                        self._send(Seeked(self.source, position))
            case "seek":
                if self._state is _State.PLAYING:
                    # mpv answers time-pos with the seek's target while it seeks: Trakt hears
                    # of the seek now, not once the decoder caught up (playback-restart).
                    self._seeking = True
                    position = await self._sample()
                    if position is not None:
                        self._send(Seeked(self.source, position))
            case "end-file":
                was, position = self._state, self._estimate()
                self._state = _State.IDLE
                if was is not _State.PLAYING:
                    return
                end = _END_REASONS.get(reason or "", EndReason.STOPPED)
                if end is EndReason.EOF:
                    # time-pos is already null; the end of the file is where it stopped.
                    duration = self._playhead.duration
                    self._stop(end, duration if duration is not None else position)
                elif end is EndReason.STOPPED:
                    # Decided by what follows: start-file means the item was replaced.
                    self._stop_pending = True
                    self._stop_position = position
                else:
                    self._stop(end, position)
            case "idle":
                self._state = _State.IDLE

    async def _on_property_change(self, name: str, value: object) -> None:
        match name:
            case "pause":
                paused = value is True
                if paused == self._paused:
                    return
                # Re-anchor the extrapolation at the old speed before the state flips.
                if self._state is _State.PLAYING:
                    position, eof = await self._query("time-pos", "eof-reached")
                    self._playhead.rebase(self._playing())
                    self._paused = paused
                    self._remember(position)
                    if paused and eof is True:  # --keep-open: the end shows as a pause
                        self._end_kept_open()
                        return
                    at = self._estimate()
                    self._send(Paused(self.source, at) if paused else Resumed(self.source, at))
                    return
                self._paused = paused
                if self._state is _State.ENDED and not paused:
                    (eof,) = await self._query("eof-reached")
                    if eof is not True:  # seeked back and playing again: a new play
                        await self._start()
            case "speed":
                speed = _number(value)
                if speed is None or speed == self._playhead.speed:
                    return
                if self._state is _State.PLAYING:
                    (position,) = await self._query("time-pos")
                    self._playhead.rebase(self._playing())
                    self._playhead.speed = speed
                    self._remember(position)
                    self._progressed(self._estimate())
                else:
                    self._playhead.speed = speed
            case "duration":
                duration = _number(value)
                if duration is None:
                    return
                known = self._playhead.duration
                self._playhead.duration = duration
                if self._state is _State.PLAYING and known is None:
                    self._progressed(self._estimate())
            case "eof-reached":
                if value is True and self._state is _State.PLAYING:
                    await self._sample()
                    self._end_kept_open()

    async def _on_sync(self) -> None:
        if self._state is not _State.IDLE:
            return  # events already told us
        path, position, eof = await self._query("path", "time-pos", "eof-reached")
        if _text(path) is None or self._state is not _State.IDLE:
            return
        if position is None:
            self._state = _State.LOADING  # file-loaded is still to come
        elif eof is True:
            self._state = _State.ENDED  # found sitting at the end (--keep-open)
        else:
            await self._start()

    async def _start(self) -> None:
        values = await self._query(
            "path", "working-directory", "media-title", "duration", "time-pos", "pause", "speed"
        )
        path, cwd, title, duration, position, paused, speed = values
        self._state = _State.PLAYING
        self._title = _text(title)
        self._playhead.duration = _number(duration) or self._playhead.duration
        self._paused = paused is True
        self._playhead.speed = _number(speed) or self._playhead.speed
        self._seeking = False
        self._remember(position if position is not None else 0.0)
        media = MediaInfo(
            path=_absolute(_text(path), _text(cwd)),
            title=self._title,
            duration=self._playhead.duration,
        )
        self._send(
            Playing(
                self.source,
                media,
                position=self._estimate() or 0.0,
                duration=self._playhead.duration,
                paused=self._paused,
                speed=self._playhead.speed,
            )
        )

    def _end_kept_open(self) -> None:
        self._state = _State.ENDED
        position = self._estimate()
        self._stop(EndReason.EOF, position if position is not None else self._playhead.duration)

    # --- positions and emitting --------------------------------------------------------------

    def _playing(self) -> bool:
        return self._state is _State.PLAYING and not self._paused

    def _remember(self, position: object) -> None:
        """mpv answers with any JSON value; only a number is a position."""
        self._playhead.remember(_number(position))

    def _estimate(self) -> float | None:
        return self._playhead.estimate(self._playing())

    def _flush_stop(self, reason: EndReason) -> None:
        if self._stop_pending:
            self._stop_pending = False
            self._stop(reason, self._stop_position)

    def _stop(self, reason: EndReason, position: float | None) -> None:
        self._send(Ended(self.source, position, reason))

    def _progressed(self, position: float | None) -> None:
        if position is not None:
            self._send(
                Progressed(self.source, position, self._playhead.duration, self._playhead.speed)
            )

    def _send(self, event: PlayerEvent) -> None:
        emit_safely(self._emit, event)


def _absolute(path: str | None, cwd: str | None) -> str | None:
    """mpv reports the path as given on its command line: make a local one absolute."""
    if path is None or "://" in path or os.path.isabs(path) or cwd is None:
        return path
    return os.path.normpath(os.path.join(cwd, path))
