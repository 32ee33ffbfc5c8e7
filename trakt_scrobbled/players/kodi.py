"""The Kodi adapter: follows one Kodi through its raw TCP JSON-RPC (port 9090 by default).

Kodi pushes notifications (`Player.OnPlay`, `OnPause`, `OnSeek`, `OnStop`...) but they carry
no position and little about the item, so each transition is followed by a few requests
(`Player.GetItem`, `Player.GetProperties`). The stream is JSON objects glued together with no
delimiter; `_JsonStream` splits it. Notifications are handled one at a time, in order, by one
task; a reader task only splits the stream, answers request futures and queues notifications.

Each play names the Kodi profile it was played in (`Playing.user`, for the household's routing
rules). Kodi sends no notification when another profile loads: it takes its network services
down and up again, so the connection drops and the next one asks again
(`Profiles.GetCurrentProfile`, sent once per connection beside the first poll, never in the way
of a start).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from trakt_scrobbled.clock import Clock, SystemClock
from trakt_scrobbled.events import (
    Ended,
    EndReason,
    Ids,
    MediaInfo,
    MediaType,
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

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 5.0
"""Seconds a request (or a connection attempt) may take before it counts as failed."""

RESUME_GRACE = 1.0
"""Seconds an `OnResume` of a paused item waits before it is reported.

Opening another item while one is paused makes Kodi send `OnResume` for the OLD item (and
`GetItem` still names it), then `OnPlay` of the new one: an `OnPlay` within the grace means
the resume was not a resume.
"""

SEEK_SETTLE = 5.0
"""Seconds after an `OnSeek` during which Kodi's clock may still read the pre-seek time.

Measured on Kodi 20 with a local file: `GetProperties` answers the old time for ~0.5 s after
`OnSeek` (which itself carries the new one); a slow source takes longer. Within this window a
sample more than `STALE_GAP` from the sought position is that stale clock, not a position.
"""

STALE_GAP = 2.0
"""Seconds between a sample and our estimate beyond which, just after a seek, it is stale."""

ECHO_WINDOW = 5.0
"""Seconds after a start not preceded by its `OnPlay` during which that `OnPlay` is its echo.

Two starts come before their `OnPlay`: the poll on connect, while an item starts, and an
`OnAVStart` that overtook it. Kodi announces `OnAVStart` from the player's thread but `OnPlay`
from the GUI thread's message queue (`GUI_MSG_PLAYBACK_STARTED`), so a busy GUI thread delivers
`OnPlay` last; it is not a second play of the same item. A replay of the same item within this
window counts as the same play (nothing is lost, nothing invented).
"""

START_CHECK = 3.0
"""Seconds after an `OnPlay` before Kodi is asked whether the item started without our hearing
`OnAVStart` (it came first and was taken for the one already playing): then it is started."""

MAX_PENDING = 8 * 1024 * 1024
"""Characters of one unfinished object kept before it is treated as garbage."""

_ITEM_PROPERTIES = (
    "title",
    "year",
    "showtitle",
    "season",
    "episode",
    "file",
    "uniqueid",
    "tvshowid",
    "runtime",
)
_PLAYER_PROPERTIES = ("time", "totaltime", "speed")
_MEDIA_TYPES = {"movie": MediaType.MOVIE, "episode": MediaType.EPISODE}
_NOT_SCROBBLED = (("pvr://", "live TV / PVR"), ("plugin://", "an add-on stream"))


# --- splitting the stream ---------------------------------------------------------------------

_WHITESPACE = " \t\r\n"
_STRING = r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*'
_TOKEN = re.compile(
    rf"[{_WHITESPACE}]+|[{{}}\[\]:,]|{_STRING}\""
    r"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null"
)
_UNFINISHED_STRING = re.compile(rf"{_STRING}(?:\\(?:u[0-9a-fA-F]{{0,3}})?)?")
_UNFINISHED_VALUE = re.compile(
    r"-?(?:0|[1-9][0-9]*)?(?:\.[0-9]*)?(?:[eE][-+]?[0-9]*)?|t(?:ru?)?|f(?:a(?:ls?)?)?|n(?:ul?)?"
)


# What `_could_continue` expects next.
_VALUE, _VALUE_OR_END, _KEY, _KEY_OR_END, _COLON, _COMMA_OR_END = range(6)
_VALUE_OK = (_VALUE, _VALUE_OR_END)
_STRING_OK = (_VALUE, _VALUE_OR_END, _KEY, _KEY_OR_END)
_OPENING = frozenset("{[")
_CLOSING = {"}": "{", "]": "["}
_PUNCTUATION = frozenset("{}[]:,")


def _could_continue(text: str, start: int) -> bool:
    """Whether `text[start:]` (starting with '{') is the beginning of a JSON object.

    Only asked when `raw_decode` failed: tells an object cut by a read (wait for more) from
    garbage (skip it). A pushdown check over JSON's tokens, tolerating a cut last token.
    """
    stack: list[str] = []
    expect = _VALUE
    pos = start
    scalar_at = -1  # where the last number or literal began
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            if text[pos] == '"':
                return expect in _STRING_OK and _UNFINISHED_STRING.fullmatch(text, pos) is not None
            if expect in _VALUE_OK:
                return _UNFINISHED_VALUE.fullmatch(text, pos) is not None
            # "1." or "1e": a number cut after its first part
            return scalar_at >= 0 and _UNFINISHED_VALUE.fullmatch(text, scalar_at) is not None
        lexeme = match.group()
        scalar_at = -1
        if lexeme[0] in _WHITESPACE:
            pass
        elif lexeme in _OPENING and expect in _VALUE_OK:
            stack.append(lexeme)
            expect = _KEY_OR_END if lexeme == "{" else _VALUE_OR_END
        elif lexeme in _CLOSING and stack and stack[-1] == _CLOSING[lexeme]:
            if expect not in (_COMMA_OR_END, _KEY_OR_END if lexeme == "}" else _VALUE_OR_END):
                return False
            stack.pop()
            if not stack:
                return False  # complete, yet raw_decode refused it
            expect = _COMMA_OR_END
        elif lexeme == ":" and expect == _COLON:
            expect = _VALUE
        elif lexeme == "," and expect == _COMMA_OR_END:
            expect = _KEY if stack[-1] == "{" else _VALUE
        elif lexeme[0] == '"' and expect in (_KEY, _KEY_OR_END):
            expect = _COLON
        elif lexeme[0] == '"' and expect in _VALUE_OK:
            expect = _COMMA_OR_END
        elif lexeme[0] not in _PUNCTUATION and expect in _VALUE_OK:
            scalar_at = pos
            expect = _COMMA_OR_END
        else:
            return False
        pos = match.end()
    return True


_SKIP = re.compile(r'(?:[^"{}\[\]]++|"(?:[^"\\]++|\\.)*+")*+')
"""Everything up to the next bracket, complete strings included, in one C-speed match."""
_STRING_REST = re.compile(r'(?:[^"\\]++|\\.)*+')
"""The rest of a string cut by a read, up to its closing quote (or the end of the text)."""

PROBE_LIMIT = 2048
"""Characters of an unfinished object checked token by token for garbage on each read; past
this only its brackets are followed, so that a big object costs linear time."""


class _JsonStream:
    """Kodi's TCP stream (JSON objects with no delimiter) split into objects.

    `feed` keeps an unfinished object for the next read; garbage is skipped up to the next
    '{' and counted, so that the caller can say so once. Each character is scanned once: the
    brackets of an unfinished object are followed across reads, and the object is decoded
    only when they balance (a big object sent in pieces costs linear time, not quadratic).
    """

    def __init__(self) -> None:
        self._buffer = ""
        self._decoder = json.JSONDecoder()
        self._scanned = 0
        """Characters of `_buffer` (an unfinished object) whose brackets are counted."""
        self._stack: list[str] = []
        self._in_string = False

    @property
    def pending(self) -> int:
        """Characters of an unfinished object held back."""
        return len(self._buffer)

    def feed(self, text: str) -> tuple[list[object], int]:
        """The objects completed by `text`, and how many characters were skipped."""
        buffer = self._buffer + text
        objects: list[object] = []
        skipped = 0
        pos = 0
        while True:
            if not self._scanned:
                while pos < len(buffer) and buffer[pos] in _WHITESPACE:
                    pos += 1
                if pos == len(buffer):
                    break
                if buffer[pos] != "{":
                    found = buffer.find("{", pos + 1)
                    end = found if found >= 0 else len(buffer)
                    skipped += end - pos
                    pos = end
                    continue
            closed = self._scan(buffer, pos)
            if closed is None:  # unfinished
                held = len(buffer) - pos
                if held > MAX_PENDING:
                    resume = len(buffer)  # too big to be Kodi's: dropped
                elif held <= PROBE_LIMIT and not _could_continue(buffer, pos):
                    resume = pos + 1  # garbage before a real object: look inside
                else:
                    break  # cut by the read: wait for the rest
            else:
                try:
                    value, stop = self._decoder.raw_decode(buffer, pos)
                except (json.JSONDecodeError, RecursionError):
                    stop = -1
                if stop == closed:
                    objects.append(value)
                    pos = closed
                    continue
                resume = closed  # brackets balanced (or broken) around garbage
            self._reset()
            found = buffer.find("{", resume)
            end = found if found >= 0 else len(buffer)
            skipped += end - pos
            pos = end
        self._buffer = buffer[pos:]
        return objects, skipped

    def _reset(self) -> None:
        self._scanned = 0
        self._stack.clear()
        self._in_string = False

    def _scan(self, buffer: str, start: int) -> int | None:
        """The end of the object starting at `start` once its brackets balance, else None.

        Resumes where the previous read stopped; a bracket that closes the wrong kind ends
        the object there too (then it is garbage, which `raw_decode` tells).
        """
        pos = start + self._scanned
        stack = self._stack
        size = len(buffer)
        while pos < size:
            if self._in_string:
                pos = _STRING_REST.match(buffer, pos).end()  # type: ignore[union-attr]
                if pos >= size or buffer[pos] != '"':
                    break  # cut inside the string (maybe after a backslash): wait
                pos += 1
                self._in_string = False
                continue
            pos = _SKIP.match(buffer, pos).end()  # type: ignore[union-attr]
            if pos >= size:
                break
            char = buffer[pos]
            pos += 1
            if char == '"':
                self._in_string = True
            elif char in "{[":
                stack.append(char)
            elif stack and stack[-1] == _CLOSING[char]:
                stack.pop()
                if not stack:
                    self._reset()
                    return pos
            else:
                self._reset()
                return pos  # a mismatched bracket: garbage up to here
        self._scanned = pos - start
        return None


# --- values Kodi sends --------------------------------------------------------------------------


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _seconds(value: object) -> float | None:
    """Kodi's `{hours, minutes, seconds, milliseconds}` as seconds."""
    parts = _dict(value)
    numbers = [_int(parts.get(k)) for k in ("hours", "minutes", "seconds", "milliseconds")]
    if any(n is None for n in numbers):
        return None
    hours, minutes, seconds, millis = (n or 0 for n in numbers)
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def _ids(value: object) -> Ids:
    """Kodi's `uniqueid` (`{"imdb": "tt…", "tmdb": "603", "tvdb": "…"}`, all strings)."""
    raw = _dict(value)

    def number(key: str) -> int | None:
        value = raw.get(key)
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdecimal():
            value = int(value)
        number = _int(value)
        return number if number is not None and number > 0 else None

    imdb = raw.get("imdb")
    return Ids(
        imdb=imdb.strip() if isinstance(imdb, str) and imdb.strip().startswith("tt") else None,
        tmdb=number("tmdb"),
        tvdb=number("tvdb"),
    )


@dataclass(frozen=True, slots=True)
class _ItemKey:
    """Which item a notification or `GetItem` is about: library id, else its label.

    For files outside the library notifications say `type: "movie"` where `GetItem` says
    `"unknown"`, so the type only counts along with a library id.
    """

    kind: str | None
    id: int | None
    label: str | None

    @classmethod
    def of(cls, item: Mapping[str, Any], *, label_key: str) -> _ItemKey | None:
        item_id = _int(item.get("id"))
        if item_id is not None and item_id >= 0:
            return cls(_text(item.get("type")), item_id, None)
        label = _text(item.get(label_key))
        return cls(None, None, label) if label is not None else None


def _skip_reason(item: Mapping[str, Any]) -> str | None:
    """Why an item is not scrobbled unless `include_pvr`: live TV, recordings, add-on streams."""
    if item.get("type") == "channel":
        return "live TV / PVR"
    path = _text(item.get("file")) or ""
    for prefix, why in _NOT_SCROBBLED:
        if path.startswith(prefix):
            return why
    return None


# --- messages to the handler ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Notification:
    method: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Sync:
    """Just connected (or Kodi woke up): find out what is playing."""


@dataclass(frozen=True, slots=True)
class _Tick:
    """Time for a PROGRESS sample."""


@dataclass(frozen=True, slots=True)
class _ResumeDue:
    generation: int


@dataclass(frozen=True, slots=True)
class _StartDue:
    """Time to ask whether an item announced by `OnPlay` started (see `START_CHECK`)."""

    generation: int


@dataclass(frozen=True, slots=True)
class _Closed:
    """The connection ended (Kodi quit, crashed, was killed)."""


_Message = _Notification | _Sync | _Tick | _ResumeDue | _StartDue | _Closed


class _CallFailed(Exception):
    """A request got an error answer, no answer in time, or the connection went away."""


class _State(StrEnum):
    IDLE = "idle"
    STARTING = "starting"
    """`OnPlay` seen; PLAY waits for `OnAVStart`, when the duration and position are real."""
    PLAYING = "playing"
    """PLAY was emitted (paused or not): a STOP is owed."""
    SKIPPED = "skipped"
    """Something plays that is not scrobbled (live TV, an add-on stream)."""


# --- the adapter --------------------------------------------------------------------------------


_REMOTE_CONTROL = (
    "Settings > Services > Control > Allow remote control from applications on this system"
)


def _refused_hint(reached: bool) -> str:
    """What a refused connection may mean. A Kodi that answered before had remote control on:
    it quit, or loads another profile (its services restart), whose own settings need it too."""
    if reached:
        return f"; Kodi quit or is loading another profile (each profile needs {_REMOTE_CONTROL})"
    return f"; if Kodi runs, enable {_REMOTE_CONTROL}"


class KodiPlayer:
    """Follows the Kodi at `host:port` (its JSON-RPC TCP port), reconnecting by itself."""

    name = "kodi"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        clock: Clock | None = None,
        progress_interval: float = 60.0,
        reconnect: tuple[float, float] = (1.0, 30.0),
        include_pvr: bool = False,
        request_timeout: float = REQUEST_TIMEOUT,
        start_check: float = START_CHECK,
    ) -> None:
        self.host = host
        self.port = port
        self.source = f"kodi:{host}:{port}"
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._progress_interval = progress_interval
        self._reconnect = reconnect
        self._include_pvr = include_pvr
        self._request_timeout = request_timeout
        self._start_check = start_check
        self._said = LogOnce(log)
        self._link: _Link | None = None

    def ignored_counts(self) -> Mapping[str, int]:
        return {}

    def routes(self) -> tuple[Route, ...]:
        return ()

    def connections(self) -> list[Connection]:
        link = self._link
        return [] if link is None else [Connection(self.source, link.describe())]

    async def run(self, emit: Emit) -> None:
        first, cap = self._reconnect
        delay = first
        up: bool | None = None  # what the log said last: connected, unreachable, nothing yet
        reached = False  # a Kodi answered here before: remote control was on then
        while True:
            try:
                async with asyncio.timeout(self._request_timeout):
                    reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError as err:  # refused, unreachable, timed out (TimeoutError)
                if up is not False:
                    up = False
                    reason = os.strerror(err.errno) if err.errno else type(err).__name__
                    hint = _refused_hint(reached) if isinstance(err, ConnectionRefusedError) else ""
                    log.info(
                        "kodi: %s:%s not reachable (%s)%s; retrying",
                        self.host,
                        self.port,
                        reason,
                        hint,
                    )
                await self._clock.sleep(delay)
                delay = min(delay * 2, cap)
                continue
            if up is not True:
                up = True
                log.info("kodi: connected to %s:%s", self.host, self.port)
            link = _Link(self, reader, writer, emit)
            self._link = link
            try:
                await link.serve()
            finally:
                self._link = None
            if link.answered:
                reached = True
                log.info("kodi: connection to %s:%s closed", self.host, self.port)
                up = None
                delay = first
            else:
                # Something that is not Kodi (or a Kodi that never answers): no tight loop.
                await self._clock.sleep(delay)
                delay = min(delay * 2, cap)


class _Link:
    """One connection to Kodi, and what it is playing."""

    def __init__(
        self,
        player: KodiPlayer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        emit: Emit,
    ) -> None:
        self._player = player
        self._said = player._said
        self._clock = player._clock
        self._source = player.source
        self._reader = reader
        self._writer = writer
        self._emit = emit
        self._inbox: asyncio.Queue[_Message] = asyncio.Queue()
        self._requests: dict[int, asyncio.Future[object]] = {}
        self._next_id = 1
        self._closed = False
        self.answered = False
        """A request got its answer: this is a working Kodi."""
        self._tasks: list[asyncio.Task[Any]] = []
        self._shows: dict[int, Ids] = {}
        self._profile: asyncio.Task[str | None] | None = None
        """The question of the current profile (asked once per connection, see the top)."""
        # what is playing
        self._state = _State.IDLE
        self._key: _ItemKey | None = None
        self._echo: tuple[_ItemKey | None, float] | None = None
        """The `OnPlay` a start still expects (see `ECHO_WINDOW`): its item, until when."""
        self._announced = False
        """`STARTING` because of an `OnPlay` (not the poll): the start owes no echo."""
        self._start_generation = 0
        self._title: str | None = None
        self._playerid = 1
        self._paused = False
        self._playhead = Playhead(self._clock)
        self._tick_queued = False
        self._sought_at: float | None = None
        self._ticker = Ticker(
            self._clock, player._progress_interval, self._tick_due, f"{self._source} progress"
        )
        self._resume_generation = 0
        self._resume_pending = False

    def describe(self) -> str:
        if self._state is _State.PLAYING:
            return f"{'paused' if self._paused else 'playing'}: {self._title or '?'}"
        return "idle"

    # --- the connection ----------------------------------------------------------------------

    async def serve(self) -> None:
        """Follow Kodi until the connection closes; cancelling detaches without any STOP."""
        self._inbox.put_nowait(_Sync())
        self._tasks = [
            asyncio.create_task(self._read_loop(), name=f"{self._source} reader"),
        ]
        self._ask_profile()
        try:
            while True:
                message = await self._inbox.get()
                if isinstance(message, _Closed):
                    self._gone()
                    return
                await self._handle(message)
                self._ticker.switch(self._playing())
        finally:
            self._close()
            await self._ticker.close()
            tasks = self._tasks
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._writer.wait_closed()

    def _close(self) -> None:
        self._closed = True
        self._writer.close()
        for future in self._requests.values():
            if not future.done():
                future.set_exception(_CallFailed("connection closed"))
        self._requests.clear()

    async def _read_loop(self) -> None:
        stream = _JsonStream()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            while True:
                try:
                    chunk = await self._reader.read(65536)
                except OSError as err:
                    log.debug("kodi: reading from %s failed: %s", self._source, err)
                    chunk = b""
                if not chunk:
                    if stream.pending or decoder.decode(b"", final=True):
                        log.debug("kodi: dropped an unfinished object at the end of the stream")
                    return
                objects, skipped = stream.feed(decoder.decode(chunk))
                if skipped:
                    self._said.once(
                        "garbage",
                        logging.WARNING,
                        "kodi: %s sent %d characters that are not JSON-RPC; skipped",
                        self._source,
                        skipped,
                    )
                for value in objects:
                    self._received(value)
        finally:
            self._close()
            self._inbox.put_nowait(_Closed())

    def _received(self, value: object) -> None:
        message = _dict(value)
        method = message.get("method")
        if isinstance(method, str) and "id" not in message:
            data = _dict(message.get("params")).get("data")
            self._inbox.put_nowait(_Notification(method, _dict(data)))
            return
        request_id = _int(message.get("id"))
        future = self._requests.pop(request_id, None) if request_id is not None else None
        if future is None or future.done():
            if request_id is not None and request_id < self._next_id:
                log.debug("kodi: late answer to request %d ignored", request_id)
            else:
                self._said.once(
                    "unexpected", logging.WARNING, "kodi: unexpected message from %s", self._source
                )
            return
        if "error" in message:
            error = _dict(message["error"])
            future.set_exception(
                _CallFailed(f"error {error.get('code')}: {_text(error.get('message')) or '?'}")
            )
        else:
            self.answered = True
            future.set_result(message.get("result"))

    async def _call(self, method: str, **params: object) -> object:
        if self._closed:
            raise _CallFailed("connection closed")
        request_id = self._next_id
        self._next_id += 1
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._requests[request_id] = future
        request: dict[str, object] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params:
            request["params"] = params
        timeout = self._player._request_timeout
        try:
            self._writer.write(json.dumps(request).encode())
            async with asyncio.timeout(timeout):
                await self._writer.drain()
                return await future
        except TimeoutError:
            raise _CallFailed(f"no answer within {timeout:g} s") from None
        except OSError as err:
            raise _CallFailed(f"connection lost: {err}") from err
        finally:
            self._requests.pop(request_id, None)

    async def _ask(self, method: str, **params: object) -> object | None:
        """A request whose failure is logged (once per method) rather than raised: None."""
        try:
            return await self._call(method, **params)
        except _CallFailed as err:
            if not self._closed:
                self._said.once(
                    f"call {method}",
                    logging.WARNING,
                    "kodi: %s on %s failed: %s",
                    method,
                    self._source,
                    err,
                )
            return None

    def _tick_due(self) -> None:
        if not self._tick_queued:
            self._tick_queued = True
            self._inbox.put_nowait(_Tick())

    # --- what Kodi says ----------------------------------------------------------------------

    async def _handle(self, message: _Message) -> None:
        match message:
            case _Notification(method, data):
                await self._on_notification(method, data)
            case _Tick():
                self._tick_queued = False
                if self._playing() and not self._resume_pending:
                    await self._sample()
                    self._progressed()
            case _ResumeDue(generation):
                if self._resume_pending and generation == self._resume_generation:
                    await self._resume()
            case _StartDue(generation):
                if self._state is _State.STARTING and generation == self._start_generation:
                    await self._reconcile(announced=True)
                    if self._state is _State.STARTING:  # still not started: ask again later
                        self._later(self._player._start_check, _StartDue(generation))
            case _Sync():
                await self._settle_resume()
                await self._reconcile()

    async def _on_notification(self, method: str, data: Mapping[str, Any]) -> None:
        key = _ItemKey.of(_dict(data.get("item")), label_key="title")
        match method:
            case "Player.OnPlay":
                self._drop_resume()
                echo, self._echo = self._echo, None
                if echo is not None and echo[0] == key and self._clock.monotonic() < echo[1]:
                    return  # the late announcement of what was already started
                # Kodi sends no OnStop for the item that a new one replaces.
                self._end(EndReason.REPLACED)
                self._state = _State.STARTING
                self._key = key
                self._announced = True
                self._check_start_later()
            case "Player.OnAVStart":
                if self._state in (_State.PLAYING, _State.SKIPPED) and (
                    key is None or key == self._key
                ):
                    return
                announced = self._state is _State.STARTING and self._announced
                self._drop_resume()
                self._end(EndReason.REPLACED)  # a play whose OnPlay is missed, or still to come
                await self._reconcile(av_started=True, announced=announced)
            case "Player.OnPause":
                if not self._concerns(key):
                    return
                if self._resume_pending:
                    self._drop_resume()  # resumed and paused again within the grace
                    return
                if not self._paused:
                    await self._sample()
                    self._playhead.rebase(self._playing())
                    self._paused = True
                    self._send(Paused(self._source, self._estimate()))
            case "Player.OnResume":
                if self._concerns(key) and self._paused and not self._resume_pending:
                    self._resume_pending = True
                    self._resume_generation += 1
                    self._later(RESUME_GRACE, _ResumeDue(self._resume_generation))
            case "Player.OnSeek":
                if not self._concerns(key):
                    return
                await self._settle_resume()
                position = _seconds(_dict(data.get("player")).get("time"))
                if position is None:
                    await self._sample()
                else:
                    self._playhead.remember(position)
                    self._sought_at = self._clock.monotonic()
                self._sought()
            case "Player.OnSpeedChanged":
                speed = _float(_dict(data.get("player")).get("speed"))
                if self._concerns(key) and speed and speed != self._playhead.speed:
                    await self._settle_resume()
                    await self._sample()
                    self._playhead.speed = speed  # the notification is newer than the sample
                    self._progressed()
            case "Player.OnStop":
                self._drop_resume()
                ended = data.get("end") is True
                self._end(EndReason.EOF if ended else EndReason.STOPPED, at_end=ended)
            case "System.OnQuit":
                self._drop_resume()
                self._end(EndReason.QUIT)
            case "System.OnSleep":
                # The machine sleeps: whatever plays is suspended; report it as paused.
                await self._settle_resume()
                if self._playing():
                    self._playhead.rebase(self._playing())
                    self._paused = True
                    self._send(Paused(self._source, self._estimate()))
            case "System.OnWake":
                self._inbox.put_nowait(_Sync())
            case _:
                self._said.once(
                    f"ignored {method}", logging.DEBUG, "kodi: ignoring %s notifications", method
                )

    def _concerns(self, key: _ItemKey | None) -> bool:
        """A notification about the item being reported (not an earlier or ignored one)."""
        if self._state is not _State.PLAYING:
            return False
        return key is None or self._key is None or key == self._key

    def _later(self, seconds: float, message: _Message) -> None:
        async def deliver() -> None:
            await self._clock.sleep(seconds)
            self._inbox.put_nowait(message)

        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(asyncio.create_task(deliver()))

    def _check_start_later(self) -> None:
        """A new start: ask after `START_CHECK` whether it began (a check earlier due lapses)."""
        self._start_generation += 1
        self._later(self._player._start_check, _StartDue(self._start_generation))

    def _drop_resume(self) -> None:
        self._resume_pending = False
        self._resume_generation += 1

    async def _settle_resume(self) -> None:
        """Something else happens after an `OnResume`: it was a real one, report it first."""
        if self._resume_pending:
            await self._resume()

    async def _resume(self) -> None:
        self._drop_resume()
        if self._state is not _State.PLAYING or not self._paused:
            return
        props = await self._properties()
        if props is not None and _float(props.get("speed")) == 0:
            return  # paused again meanwhile
        self._paused = False
        self._absorb(props)
        self._send(Resumed(self._source, self._estimate()))

    # --- asking Kodi -------------------------------------------------------------------------

    def _ask_profile(self) -> asyncio.Task[str | None]:
        """Ask for the current profile now; the answer is awaited only by a play's start."""
        task = asyncio.create_task(self._current_profile(), name=f"{self._source} profile")
        self._profile = task
        self._tasks.append(task)
        return task

    async def _current_profile(self) -> str | None:
        answer = await self._ask("Profiles.GetCurrentProfile")
        if answer is None:
            self._profile = None  # failed (logged): asked again at the next play
            return None
        label = _text(_dict(answer).get("label"))
        log.debug("kodi: %s is in profile %s", self._source, label or "?")
        return label

    async def _profile_name(self) -> str | None:
        """The profile's name for a play: answered long since, but for a play found by the
        poll on connect, whose answer comes right after the poll's."""
        task = self._profile if self._profile is not None else self._ask_profile()
        return await task

    async def _properties(self, playerid: int | None = None) -> Mapping[str, Any] | None:
        answer = await self._ask(
            "Player.GetProperties",
            playerid=self._playerid if playerid is None else playerid,
            properties=list(_PLAYER_PROPERTIES),
        )
        return None if answer is None else _dict(answer)

    async def _sample(self) -> None:
        """Refresh the position (and speed) from Kodi, for extrapolation."""
        self._absorb(await self._properties())

    def _absorb(self, props: Mapping[str, Any] | None) -> None:
        if props is None:
            return
        position = _seconds(props.get("time"))
        if not self._stale(position):
            self._playhead.remember(position)
        speed = _float(props.get("speed"))
        if speed:
            self._playhead.speed = speed
        duration = _seconds(props.get("totaltime"))
        if duration:
            self._playhead.duration = duration

    async def _reconcile(self, *, av_started: bool = False, announced: bool = False) -> None:
        """Ask Kodi what plays and line our state up with it: on connect, wake, `OnAVStart`,
        and a start overdue. `announced`: its `OnPlay` was heard (a start owes no echo)."""
        players = await self._ask("Player.GetActivePlayers")
        if not isinstance(players, list):
            return  # failed (logged) or nonsense
        video = next((_dict(p) for p in players if _dict(p).get("type") == "video"), None)
        playerid = None if video is None else _int(video.get("playerid"))
        if playerid is None:
            self._end(EndReason.STOPPED)  # nothing (or only music, pictures) plays
            return
        answer = await self._ask(
            "Player.GetItem", playerid=playerid, properties=list(_ITEM_PROPERTIES)
        )
        props = await self._properties(playerid)
        if answer is None or props is None:
            return
        item = _dict(_dict(answer).get("item"))
        key = _ItemKey.of(item, label_key="label")
        speed = _float(props.get("speed"))
        if self._state is _State.PLAYING and key is not None and key == self._key:
            self._line_up(speed == 0, props)  # the same item: maybe paused or resumed meanwhile
            return
        was_starting = self._state is _State.STARTING
        announced = announced or (was_starting and self._announced)
        self._end(EndReason.REPLACED)
        self._playerid = playerid
        if not av_started and not _seconds(props.get("totaltime")):
            self._state = _State.STARTING  # not started yet: OnAVStart will come
            self._key = key
            self._announced = announced
            if not was_starting:  # a new start; one already starting has its check due
                self._check_start_later()
            return
        reason = None if self._player._include_pvr else _skip_reason(item)
        if reason is not None:
            self._state = _State.SKIPPED
            self._key = key
            self._said.once(
                f"skip {reason}",
                logging.INFO,
                "kodi: not scrobbling %s (%s)",
                reason,
                _text(item.get("file")) or _text(item.get("label")) or "?",
            )
            return
        await self._start(item, props, key, owes_echo=not announced)

    def _line_up(self, paused: bool, props: Mapping[str, Any]) -> None:
        self._playhead.rebase(self._playing())
        was_paused = self._paused
        self._paused = paused
        self._absorb(props)
        if paused != was_paused:
            at = self._estimate()
            self._send(Paused(self._source, at) if paused else Resumed(self._source, at))

    async def _start(
        self,
        item: Mapping[str, Any],
        props: Mapping[str, Any],
        key: _ItemKey | None,
        *,
        owes_echo: bool,
    ) -> None:
        speed = _float(props.get("speed"))
        self._state = _State.PLAYING
        self._key = key
        self._echo = (key, self._clock.monotonic() + ECHO_WINDOW) if owes_echo else None
        self._paused = speed == 0
        self._playhead.speed = speed if speed else 1.0
        runtime = _float(item.get("runtime"))
        self._playhead.duration = _seconds(props.get("totaltime")) or runtime or None
        self._playhead.remember(_seconds(props.get("time")) or 0.0)
        media = await self._media(item)
        profile = await self._profile_name()
        self._title = media.title or media.path
        self._send(
            Playing(
                self._source,
                media,
                position=self._estimate(),
                duration=self._playhead.duration,
                paused=self._paused,
                speed=self._playhead.speed,
                user=profile,
            )
        )

    async def _media(self, item: Mapping[str, Any]) -> MediaInfo:
        media_type = _MEDIA_TYPES.get(str(item.get("type")), MediaType.UNKNOWN)
        show_ids = Ids()
        tvshowid = _int(item.get("tvshowid"))
        if media_type is MediaType.EPISODE and tvshowid is not None and tvshowid >= 0:
            show_ids = await self._show_ids(tvshowid)
        year = _int(item.get("year"))
        season = _int(item.get("season"))
        episode = _int(item.get("episode"))
        return MediaInfo(
            path=_text(item.get("file")),
            title=_text(item.get("title")) or _text(item.get("label")),
            year=year if year and year > 0 else None,
            media_type=media_type,
            show_title=_text(item.get("showtitle")),
            season=season if season is not None and season >= 0 else None,
            episode=episode if episode is not None and episode >= 0 else None,
            ids=_ids(item.get("uniqueid")),
            show_ids=show_ids,
            duration=self._playhead.duration,
        )

    async def _show_ids(self, tvshowid: int) -> Ids:
        known = self._shows.get(tvshowid)
        if known is not None:
            return known
        answer = await self._ask(
            "VideoLibrary.GetTVShowDetails", tvshowid=tvshowid, properties=["uniqueid"]
        )
        if answer is None:
            return Ids()
        ids = _ids(_dict(_dict(answer).get("tvshowdetails")).get("uniqueid"))
        self._shows[tvshowid] = ids
        return ids

    # --- positions and emitting --------------------------------------------------------------

    def _playing(self) -> bool:
        return self._state is _State.PLAYING and not self._paused

    def _stale(self, sampled: float | None) -> bool:
        """A sampled time that is Kodi's pre-seek clock (see `SEEK_SETTLE`)."""
        if sampled is None or self._sought_at is None:
            return False
        if self._clock.monotonic() - self._sought_at >= SEEK_SETTLE:
            self._sought_at = None
            return False
        expected = self._estimate()
        return expected is not None and abs(sampled - expected) > STALE_GAP

    def _estimate(self) -> float | None:
        return self._playhead.estimate(self._playing())

    def _end(self, reason: EndReason, *, at_end: bool = False) -> None:
        """The item is over: STOP if PLAY was reported, then nothing plays."""
        if self._state is _State.PLAYING:
            duration = self._playhead.duration
            position = duration if at_end and duration else self._estimate()
            self._send(Ended(self._source, position, reason))
        self._state = _State.IDLE
        self._key = None
        self._echo = None
        self._announced = False
        self._paused = False
        self._playhead.reset()
        self._sought_at = None
        self._title = None

    def _gone(self) -> None:
        self._end(EndReason.GONE)

    def _progressed(self) -> None:
        position = self._estimate()
        if position is not None:
            self._send(
                Progressed(self._source, position, self._playhead.duration, self._playhead.speed)
            )

    def _sought(self) -> None:
        position = self._estimate()
        if position is not None:
            self._send(Seeked(self._source, position))

    def _send(self, event: PlayerEvent) -> None:
        emit_safely(self._emit, event)
