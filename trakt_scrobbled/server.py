"""The local HTTP listener: webhooks in, nothing out (`status` has its own door, control.py).

Plex, Jellyfin and Emby are the remote callers (`POST /plex|jellyfin|emby/SECRET`, each route
with its own secret), and none can sign its webhooks: the URL's secret is the only
credential, so it is compared in constant time and never logged (there is no access log, and
what is logged about a request has its path masked). Whatever arrives, the answer is 2xx or 4xx:
a webhook that crashed the listener, or a 5xx that made Plex retry, would be worse than a lost
event.

HTTP/1.1 is parsed by h11 (already loaded for httpx) and form bodies by python-multipart, both
streaming; this module only moves bytes between them and the socket. A full web framework for
two routes cost a fifth of the daemon's memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http
import json
import logging
import re
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import h11
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

__all__ = [
    "MAX_BODY",
    "LocalServer",
    "PlexHandler",
    "ServerError",
]

log = logging.getLogger(__name__)

MAX_BODY = 10 * 1024 * 1024
"""Bytes: Plex's JSON is a few KB, its `thumb` JPEG a few hundred."""

CHUNK = 64 * 1024
"""Bytes read from the socket at a time, so a thumbnail is never held whole."""

MAX_HEAD = 16 * 1024
"""Bytes of request line and headers; more is answered 431."""

HEAD_TIMEOUT = 15.0
"""Seconds a kept-alive connection may wait for its next request's head."""

FIRST_HEAD_TIMEOUT = 5.0
"""Seconds a new connection has to send its first request's head: Plex sends it at once; a
slow-loris client trickling bytes loses its place soon."""

BODY_TIMEOUT = 10.0
"""Seconds a body may pause between two reads before the request is answered 408."""

DISCARD_SECONDS = 5.0
"""Seconds spent reading the unwanted rest of a body before answering."""

SEND_TIMEOUT = 10.0
"""Seconds an answer may take to leave, for a client that stopped reading."""

SHUTDOWN_TIMEOUT = 2.0
"""Seconds `stop` lets requests in flight finish."""

MAX_CONNECTIONS = 64
"""Open connections at once. Past it, a newcomer takes the place of the oldest connection
still waiting for a head, from the address holding the most: a flood of slow clients cannot
keep a real webhook out. Only when every place is answering a request is a newcomer closed."""

MAX_PER_PEER = 16
"""Open connections from one address; past it, that address's oldest idle one is closed."""

SLOW_REQUEST = 5.0
"""Seconds after which a request still being read may be closed to make room, like an idle
connection (a body trickled in to hold a place); Plex sends a webhook in milliseconds."""

PlexHandler = Callable[[Mapping[str, Any]], object]
"""Takes one webhook's payload object; returns what it did, for a debug log line."""

_PLEX_PATH = re.compile(r"/(plex|jellyfin|emby)/[^\s\"'?#]*")
_MASKED = r"/\1/***"
WEBHOOK_ROUTES = frozenset({"plex", "jellyfin", "emby"})
"""The `POST /{name}/{secret}` routes a player may mount (see `Route`)."""
_PAYLOAD_FIELDS = frozenset({b"payload", b"data"})
"""The form field holding the JSON: Plex's `payload`, Emby's `data`."""
_SURROGATE = re.compile("[\ud800-\udfff]")
_TEXT = "text/plain; charset=utf-8"


@dataclass(slots=True)
class _Mount:
    """One mounted webhook route: its secret (as a digest for the comparison) and handler."""

    secret: str = field(repr=False)
    digest: bytes = field(repr=False)
    handler: PlexHandler
    warned: bool = False
    """A wrong secret was logged once already (a misconfigured server would flood the log)."""


class ServerError(Exception):
    """The listener cannot run (e.g. its port is taken)."""


class _Rejected(Exception):
    """A request answered with a 4xx; `reason` is safe to log and send back."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    content_type: str = _TEXT
    headers: tuple[tuple[str, str], ...] = ()


def _text(status: int, text: str, *headers: tuple[str, str]) -> _Answer:
    return _Answer(status, (text + "\n").encode(), _TEXT, headers)


class LocalServer:
    """`POST /plex/{secret}` for Plex webhooks; anything else is 404.

    Port 0 picks a free port (tests); `port` then tells which. A route is off (404) until
    `set_route` (`set_plex`) gives it a non-empty secret and a handler, so a config reload can
    switch it; `/jellyfin/` and `/emby/` work as `/plex/` does.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8642,
        *,
        plex_secret: str = "",
        on_webhook: PlexHandler | None = None,
        max_body: int = MAX_BODY,
    ) -> None:
        self.host = host
        self._port = port
        self._max_body = max_body
        self._mounts: dict[str, _Mount] = {}
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], _Link] = {}
        self.set_plex(plex_secret, on_webhook)

    def set_plex(self, secret: str, handler: PlexHandler | None) -> None:
        """Enable webhooks with this secret and handler; an empty secret or no handler disables."""
        self.set_route("plex", secret, handler)

    def set_route(self, name: str, secret: str, handler: PlexHandler | None) -> None:
        """Serve `POST /{name}/{secret}` (one of `WEBHOOK_ROUTES`) with `handler`, or stop."""
        if name not in WEBHOOK_ROUTES:
            raise ValueError(f"no webhook route /{name}/")
        if secret and handler is not None:
            self._mounts[name] = _Mount(secret, _digest(secret), handler)
        else:
            self._mounts.pop(name, None)

    @property
    def port(self) -> int:
        """The port listened on: the configured one, or the one picked for port 0."""
        server = self._server
        if server is not None:
            for sock in server.sockets:
                address = sock.getsockname()
                if isinstance(address, tuple) and len(address) >= 2:
                    return int(address[1])
        return self._port

    @property
    def requests_in_flight(self) -> int:
        """Requests between their head and the end of their answer."""
        return sum(link.busy for link in self._connections.values())

    async def __aenter__(self) -> LocalServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the local server is already started")
        try:
            self._server = await asyncio.start_server(
                self._serve, self.host, self._port, reuse_address=True, limit=CHUNK
            )
        except OSError as err:
            reason = err.strerror or str(err) or type(err).__name__
            raise ServerError(f"cannot listen on {self.host}:{self._port}: {reason}") from err
        log.info("listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening; requests in flight get `SHUTDOWN_TIMEOUT` to finish, then are cut."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for link in self._connections.values():
            if not link.busy:  # waiting for a next request that is not coming now
                link.abort()
        if self._connections:
            _, late = await asyncio.wait(list(self._connections), timeout=SHUTDOWN_TIMEOUT)
            for task in late:
                self._connections[task].abort()  # its next read or write fails, and it ends
                task.cancel()  # unless it was stuck elsewhere
            if late:
                await asyncio.wait(late)
        await server.wait_closed()
        log.info("stopped listening on %s:%s", self.host, self._port)

    # --- connections -------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        link = _Link(reader, writer, self._max_body)
        if task is None or not self._make_room(link.peer):
            log.debug("too many connections, all answering requests: one closed unanswered")
            writer.transport.abort()
            return
        self._connections[task] = link
        try:
            while await self._exchange(link):
                link.conn.start_next_cycle()
        except (OSError, TimeoutError, h11.LocalProtocolError) as err:
            log.debug("a connection ended early: %s", self._redact(repr(err)))
        except asyncio.CancelledError:
            # Only `stop` cancels, and nothing awaits this task; re-raised, Python 3.11's stream
            # callback would log the cancellation as an error.
            writer.transport.abort()
        finally:
            self._connections.pop(task, None)
            writer.close()

    def _make_room(self, peer: str | None) -> bool:
        """Whether a new connection from `peer` may be served, closing an idle one if needed."""
        live = [link for link in self._connections.values() if not link.evicted]
        mine = [link for link in live if link.peer == peer]
        if len(mine) >= MAX_PER_PEER:
            return _evict_oldest_idle(mine)
        if len(live) < MAX_CONNECTIONS:
            return True
        counts: dict[str | None, int] = {}
        for link in live:
            counts[link.peer] = counts.get(link.peer, 0) + 1
        busiest = max(counts, key=lambda p: counts[p])
        return _evict_oldest_idle([lk for lk in live if lk.peer == busiest]) or _evict_oldest_idle(
            live
        )

    async def _exchange(self, link: _Link) -> bool:
        """Answer one request; True when the connection can carry another."""
        try:
            request = await link.next_request()
        except h11.RemoteProtocolError as err:
            status = err.error_status_hint if 400 <= err.error_status_hint < 500 else 400
            log.debug("refused a malformed request (%s): %s", status, self._redact(str(err)))
            await link.respond(_text(status, "bad request"), close=True)
            return False
        if request is None:
            return False
        link.busy = True
        link.busy_since = asyncio.get_running_loop().time()
        try:
            answer = await self._route(link, request)
        except _Rejected as rejected:
            answer = _text(rejected.status, rejected.reason)
        except OSError:
            raise  # the client hung up mid-body: nobody to answer, nothing unexpected
        except Exception:
            log.exception("unexpected error answering %s %s", request.method, request.safe_path)
            answer = _text(400, "bad request")
        keep = answer.status != 408 and await link.discard_rest()
        await link.respond(answer, close=not keep, head=request.method == "HEAD")
        link.busy = False
        return keep and link.conn.our_state is h11.DONE and link.finished()

    async def _route(self, link: _Link, request: _Request) -> _Answer:
        segments = request.path.split("/")
        if len(segments) == 3 and segments[1] in WEBHOOK_ROUTES and segments[2]:
            name = segments[1]
            return await self._webhook(name, link, request, urllib.parse.unquote(segments[2]))
        return _text(404, "not found")

    # --- routes ------------------------------------------------------------------------------

    async def _webhook(self, name: str, link: _Link, request: _Request, secret: str) -> _Answer:
        mount = self._mounts.get(name)
        given = _digest(secret)
        if mount is None or not hmac.compare_digest(given, mount.digest):
            if mount is not None and not mount.warned:
                mount.warned = True
                log.warning(
                    "%s: a webhook came with a wrong secret (answered 404): paste the URL "
                    "`trakt-scrobbled doctor` shows into the server's webhook settings",
                    name,
                )
            else:
                log.debug("%s: a request with a wrong secret, or %s is off: 404", name, name)
            return _text(404, "not found")
        handler = mount.handler
        if request.method != "POST":
            return _text(405, "use POST", ("Allow", "POST"))
        try:
            payload = await self._payload(link, request)
        except _Rejected as rejected:
            log.info("%s: webhook refused (%s %s)", name, rejected.status, rejected.reason)
            raise
        outcome = handler(payload)
        log.debug("%s: webhook: %s", name, outcome)
        return _text(200, "ok")

    # --- bodies ------------------------------------------------------------------------------

    async def _payload(self, link: _Link, request: _Request) -> Mapping[str, Any]:
        length = request.headers.get("content-length")
        if length is not None and int(length) > self._max_body:  # h11 checked it is digits
            raise _Rejected(413, "body too large")
        mime, params = parse_options_header(request.headers.get("content-type", ""))
        if mime == b"multipart/form-data":
            return await self._from_multipart(link, params.get(b"boundary", b""))
        if mime == b"application/json":
            whole = _json_object(await link.read_all())
            inner = whole.get("payload")
            if isinstance(inner, str):
                return _json_object(inner.encode("utf-8", "surrogatepass"))
            return inner if isinstance(inner, dict) else whole
        if mime == b"application/x-www-form-urlencoded":
            text = _utf8(await link.read_all())
            try:
                fields = urllib.parse.parse_qs(text, keep_blank_values=True, max_num_fields=64)
            except ValueError as err:
                raise _Rejected(400, "malformed form") from err
            values = fields.get("payload") or fields.get("data")
            if not values:
                raise _Rejected(400, "no payload field")
            return _json_object(values[0].encode("utf-8", "surrogatepass"))
        raise _Rejected(400, "unsupported content type")

    async def _from_multipart(self, link: _Link, boundary: bytes) -> Mapping[str, Any]:
        if not boundary:
            raise _Rejected(400, "malformed multipart: no boundary")
        form = _Form()
        try:
            parser = MultipartParser(boundary, form.callbacks())
            async for chunk in link.body():
                if not form.ended:  # an epilogue after the last part is read, not parsed
                    parser.write(chunk)
            parser.finalize()
        except FormParserError as err:
            raise _Rejected(400, "malformed multipart") from err
        if not form.ended:
            raise _Rejected(400, "malformed multipart: cut short")
        if form.payload is None:
            raise _Rejected(400, "no payload part")
        return _json_object(form.payload)

    def _redact(self, text: str) -> str:
        text = _PLEX_PATH.sub(_MASKED, text)
        for mount in self._mounts.values():
            text = text.replace(mount.secret, "***")
        return text


# --- one connection -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    headers: Mapping[str, str]
    """Lower-case names; a repeated header keeps its last value."""

    @property
    def safe_path(self) -> str:
        return _PLEX_PATH.sub(_MASKED, self.path)


class _Link:
    """One client connection: h11's state, fed from the socket, with every wait bounded."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        max_body: int,
    ) -> None:
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.busy = False
        """Between a request's head and the end of its answer (`stop` waits for those)."""
        self.busy_since = 0.0
        self.evicted = False
        """Closed to make room for a newcomer; its task is ending."""
        self.opened = asyncio.get_running_loop().time()
        self._first = True
        self._reader = reader
        self._writer = writer
        self._max_body = max_body
        self._received = 0
        peer = writer.get_extra_info("peername")
        self.peer: str | None = str(peer[0]) if isinstance(peer, tuple) and peer else None

    def abort(self) -> None:
        self._writer.transport.abort()

    async def _event(self, seconds: float) -> object:
        """The next h11 event, read within `seconds` in all (a trickle does not reset it)."""
        async with asyncio.timeout(seconds):
            while (event := self.conn.next_event()) is h11.NEED_DATA:
                self.conn.receive_data(await self._reader.read(CHUNK))
        return event

    async def next_request(self) -> _Request | None:
        """The next request's head; None when the client is done or idled past the timeout."""
        self._received = 0
        first, self._first = self._first, False
        try:
            event = await self._event(FIRST_HEAD_TIMEOUT if first else HEAD_TIMEOUT)
        except TimeoutError:
            return None
        if not isinstance(event, h11.Request):
            return None  # ConnectionClosed (PAUSED cannot come: each cycle is read to its end)
        target = event.target.decode("ascii", "replace")
        path = urllib.parse.urlsplit(target).path if target != "*" else target
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in event.headers}
        return _Request(event.method.decode("ascii", "replace"), path or "/", headers)

    async def body(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive; 413 past the limit, 408 when it stalls."""
        if self.conn.they_are_waiting_for_100_continue:
            await self._send(
                self.conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b""
            )
        while self.conn.their_state is h11.SEND_BODY:
            try:
                event = await self._event(BODY_TIMEOUT)
            except TimeoutError as err:
                raise _Rejected(408, "the body stalled") from err
            except h11.RemoteProtocolError as err:  # a broken chunk, or the client hung up
                raise _Rejected(400, "malformed body") from err
            if isinstance(event, h11.Data):
                self._received += len(event.data)
                if self._received > self._max_body:
                    raise _Rejected(413, "body too large")
                yield bytes(event.data)

    async def read_all(self) -> bytes:
        body = bytearray()
        async for chunk in self.body():
            body += chunk
        return bytes(body)

    async def discard_rest(self) -> bool:
        """Read and drop what is left of the body, so that the client gets to read the answer.

        A client still sending when the connection closes sees a reset, not our 404 or 413.
        Bounded in bytes and time; False when the rest was too much, or the client waits for
        a `100 Continue` it will not get (then the connection closes after the answer).
        """
        conn = self.conn
        if conn.their_state is not h11.SEND_BODY:
            return self.finished()
        if conn.they_are_waiting_for_100_continue:
            return False
        try:
            async with asyncio.timeout(DISCARD_SECONDS):
                while conn.their_state is h11.SEND_BODY:
                    event = await self._event(DISCARD_SECONDS)
                    if isinstance(event, h11.Data):
                        self._received += len(event.data)
                        if self._received > 2 * self._max_body:
                            return False
        except (TimeoutError, h11.RemoteProtocolError):
            return False
        return self.finished()

    def finished(self) -> bool:
        """The client has sent its whole request."""
        return self.conn.their_state is h11.DONE

    async def respond(self, answer: _Answer, *, close: bool, head: bool = False) -> None:
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        headers = [
            ("Content-Type", answer.content_type),
            ("Content-Length", str(len(answer.body))),
            *answer.headers,
        ]
        if close:
            headers.append(("Connection", "close"))
        phrase = http.HTTPStatus(answer.status).phrase.encode()
        response = h11.Response(status_code=answer.status, headers=headers, reason=phrase)
        out = self.conn.send(response)
        if not head and answer.body:
            out = (out or b"") + (self.conn.send(h11.Data(data=answer.body)) or b"")
        out = (out or b"") + (self.conn.send(h11.EndOfMessage()) or b"")
        await self._send(out)

    async def _send(self, data: bytes) -> None:
        self._writer.write(data)
        async with asyncio.timeout(SEND_TIMEOUT):
            await self._writer.drain()


class _Form:
    """python-multipart callbacks that keep the first `payload` part and drop the rest."""

    def __init__(self) -> None:
        self.payload: bytes | None = None
        self.ended = False
        self._field = bytearray()
        self._value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._kept: bytearray | None = None

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._headers.clear()
        self._kept = None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[bytes(self._field).lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        ctype, _ = parse_options_header(self._headers.get(b"content-type", b"").decode("latin-1"))
        if ctype.startswith(b"multipart/"):
            raise _Rejected(400, "nested multipart")
        disposition = self._headers.get(b"content-disposition", b"").decode("latin-1")
        _, params = parse_options_header(disposition)
        if self.payload is None and params.get(b"name") in _PAYLOAD_FIELDS:
            self._kept = bytearray()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._kept is not None:  # `thumb` and anything else: dropped as it streams by
            self._kept += data[start:end]

    def _part_end(self) -> None:
        if self._kept is not None:
            self.payload = bytes(self._kept)
            self._kept = None

    def _end(self) -> None:
        self.ended = True


# --- helpers ------------------------------------------------------------------------------------


def _evict_oldest_idle(links: list[_Link]) -> bool:
    """Close the oldest of `links` waiting for a head (or stuck in a request for longer than
    `SLOW_REQUEST`); False when all are busy with requests of their own."""
    slow_since = asyncio.get_running_loop().time() - SLOW_REQUEST
    idle = [link for link in links if not link.busy or link.busy_since < slow_since]
    if not idle:
        return False
    victim = min(idle, key=lambda link: (link.busy, link.opened))
    victim.evicted = True
    victim.abort()
    log.debug("a connection waiting for its request was closed to make room")
    return True


def _digest(secret: str) -> bytes:
    """Equal-length values for `compare_digest`, so not even the secret's length leaks."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _Rejected(400, "not UTF-8") from err


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data, object_hook=_clean_object)
    except (ValueError, RecursionError) as err:  # JSONDecodeError, bad encodings, huge ints
        raise _Rejected(400, "payload is not JSON") from err
    if not isinstance(value, dict):
        raise _Rejected(400, "payload is not a JSON object")
    return value


def _clean_text(text: str) -> str:
    """A lone surrogate (`"Caf\\ud800"` in JSON) made U+FFFD: such a str cannot be encoded,
    and would crash whatever prints or stores it later."""
    return _SURROGATE.sub("\ufffd", text)


def _clean_value(value: Any) -> Any:
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, list):
        return [_clean_value(v) for v in value]
    return value  # dicts were cleaned by the hook as they were built


def _clean_object(obj: dict[str, Any]) -> dict[str, Any]:
    return {_clean_text(k): _clean_value(v) for k, v in obj.items()}
