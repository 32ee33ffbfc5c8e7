"""The local HTTP listener: Plex webhooks in, `status` out.

Plex is the only remote caller, and it cannot sign its webhooks: the URL's secret is the only
credential, so it is compared in constant time and never logged (the access log is off and
aiohttp's own error log is redacted). Whatever arrives, the answer is 2xx or 4xx: a webhook
that crashed the listener, or a 5xx that made Plex retry, would be worse than a lost event.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import traceback
import urllib.parse
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from aiohttp import BodyPartReader, MultipartReader, web

__all__ = [
    "MAX_BODY",
    "LocalServer",
    "PlexHandler",
    "ServerError",
    "StatusProvider",
]

log = logging.getLogger(__name__)

MAX_BODY = 10 * 1024 * 1024
"""Bytes: Plex's JSON is a few KB, its `thumb` JPEG a few hundred."""

CHUNK = 64 * 1024
"""Bytes read at a time from a body part, so a thumbnail is never held whole."""

DISCARD_SECONDS = 5.0
"""Seconds spent reading the unwanted rest of a body before answering."""

SHUTDOWN_TIMEOUT = 2.0
"""Seconds `stop` lets requests in flight finish."""

PlexHandler = Callable[[Mapping[str, Any]], object]
"""Takes one webhook's payload object; returns what it did, for a debug log line."""

StatusProvider = Callable[[], Mapping[str, Any]]
"""What `GET /status` serves (the same as `status --json`)."""

_PLEX_PATH = re.compile(r"/plex/[^\s\"'?#]*")
_MASKED = "/plex/***"


class ServerError(Exception):
    """The listener cannot run (e.g. its port is taken)."""


class _Rejected(Exception):
    """A webhook answered with a 4xx; `reason` is safe to log and send back."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class LocalServer:
    """`POST /plex/{secret}` for Plex webhooks and `GET /status` for loopback clients.

    Port 0 picks a free port (tests); `port` then tells which. Plex is off (404) until
    `set_plex` gives a non-empty secret and a handler, so a config reload can switch it.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8642,
        *,
        plex_secret: str = "",
        on_webhook: PlexHandler | None = None,
        status: StatusProvider | None = None,
        max_body: int = MAX_BODY,
    ) -> None:
        self.host = host
        self._port = port
        self._status = status
        self._max_body = max_body
        self._secret_digest: bytes | None = None
        self._secret = ""
        self._on_webhook: PlexHandler | None = None
        self._runner: web.AppRunner | None = None
        self.set_plex(plex_secret, on_webhook)

    def set_plex(self, secret: str, handler: PlexHandler | None) -> None:
        """Enable webhooks with this secret and handler; an empty secret or no handler disables."""
        self._warned_secret = False
        if secret and handler is not None:
            self._secret = secret
            self._secret_digest = _digest(secret)
            self._on_webhook = handler
        else:
            self._secret = ""
            self._secret_digest = None
            self._on_webhook = None

    @property
    def port(self) -> int:
        """The port listened on: the configured one, or the one picked for port 0."""
        runner = self._runner
        if runner is not None:
            for address in runner.addresses:
                if isinstance(address, tuple) and len(address) >= 2:
                    return int(address[1])
        return self._port

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
        if self._runner is not None:
            raise RuntimeError("the local server is already started")
        app = web.Application(client_max_size=self._max_body, middlewares=[self._guard])
        app.router.add_route("*", "/plex/{secret}", self._plex)
        app.router.add_get("/status", self._serve_status)
        runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,  # its lines would carry the webhook secret
            logger=_RedactingLogger(logging.getLogger("aiohttp.server"), self._redact),
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            lingering_time=0,  # `_discard_rest` does it
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port)
        try:
            await site.start()
        except OSError as err:
            await runner.cleanup()
            reason = err.strerror or str(err) or type(err).__name__
            raise ServerError(f"cannot listen on {self.host}:{self._port}: {reason}") from err
        self._runner = runner
        log.info("listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # --- request handling --------------------------------------------------------------------

    @web.middleware
    async def _guard(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Any],
    ) -> web.StreamResponse:
        """Never a 5xx: anything unexpected is logged (the path masked) and answered 400."""
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException:
            await self._discard_rest(request)
            raise
        except Exception:
            log.exception("unexpected error answering %s %s", request.method, _safe_path(request))
            response = web.Response(status=400, text="bad request\n")
        if not await self._discard_rest(request):
            response.force_close()
        return response

    async def _discard_rest(self, request: web.Request) -> bool:
        """Read and drop what is left of the body, so that the client gets to read the answer.

        A client still sending when the connection closes sees a reset, not our 404 or 413.
        Bounded in bytes and time; False when the rest was too much (then the connection
        closes). aiohttp's own "lingering" read is off: it stalls a shutdown.
        """
        content = request.content
        try:
            async with asyncio.timeout(DISCARD_SECONDS):
                while await content.readany():
                    if content.total_bytes > 2 * self._max_body:
                        return False
        except Exception:  # timed out, the client went away, a broken chunked encoding
            return False
        return True

    async def _plex(self, request: web.Request) -> web.StreamResponse:
        handler, digest = self._on_webhook, self._secret_digest
        given = _digest(request.match_info.get("secret", ""))
        if handler is None or digest is None or not hmac.compare_digest(given, digest):
            if handler is not None and not self._warned_secret:
                self._warned_secret = True
                log.warning(
                    "plex: a webhook came with a wrong secret (answered 404): paste the URL "
                    "`trakt-scrobbled doctor` shows into Plex > Settings > Webhooks"
                )
            else:
                log.debug("plex: a request with a wrong secret, or plex is off: 404")
            return web.Response(status=404, text="not found\n")
        if request.method != "POST":
            return web.Response(status=405, text="use POST\n", headers={"Allow": "POST"})
        try:
            payload = await self._payload(request)
        except _Rejected as rejected:
            log.info("plex: webhook refused (%s %s)", rejected.status, rejected.reason)
            return web.Response(status=rejected.status, text=rejected.reason + "\n")
        outcome = handler(payload)
        log.debug("plex: webhook %.60s: %s", payload.get("event"), outcome)
        return web.Response(text="ok\n")

    async def _serve_status(self, request: web.Request) -> web.StreamResponse:
        if not _is_loopback(request.remote):
            return web.Response(status=403, text="status is for local clients only\n")
        data: Mapping[str, Any] = self._status() if self._status is not None else {}
        text = json.dumps(data, default=str, sort_keys=True)
        return web.Response(text=text, content_type="application/json")

    # --- bodies ------------------------------------------------------------------------------

    async def _payload(self, request: web.Request) -> Mapping[str, Any]:
        length = request.content_length
        if length is not None and length > self._max_body:
            raise _Rejected(413, "body too large")
        ctype = request.content_type
        if ctype == "multipart/form-data":
            return await self._from_multipart(request)
        if ctype == "application/json":
            whole = _json_object(await self._read_all(request))
            inner = whole.get("payload")
            if isinstance(inner, str):
                return _json_object(inner.encode("utf-8", "surrogatepass"))
            return inner if isinstance(inner, dict) else whole
        if ctype == "application/x-www-form-urlencoded":
            text = _utf8(await self._read_all(request))
            try:
                fields = urllib.parse.parse_qs(text, keep_blank_values=True, max_num_fields=64)
            except ValueError as err:
                raise _Rejected(400, "malformed form") from err
            values = fields.get("payload")
            if not values:
                raise _Rejected(400, "no payload field")
            return _json_object(values[0].encode("utf-8", "surrogatepass"))
        raise _Rejected(400, "unsupported content type")

    async def _from_multipart(self, request: web.Request) -> Mapping[str, Any]:
        payload: bytes | None = None
        try:
            reader = MultipartReader(request.headers, request.content)
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    raise _Rejected(400, "nested multipart")
                if payload is None and part.name == "payload":
                    payload = await self._read_part(request, part, keep=True)
                else:
                    await self._read_part(request, part, keep=False)  # `thumb`: discarded
        except _Rejected:
            raise
        except Exception as err:  # aiohttp's parser errors have no common base
            self._check_size(request)  # a body cut short by the limit is a 413, not a 400
            raise _Rejected(400, "malformed multipart") from err
        await self._drain(request)
        if payload is None:
            raise _Rejected(400, "no payload part")
        return _json_object(payload)

    async def _read_part(self, request: web.Request, part: BodyPartReader, *, keep: bool) -> bytes:
        kept = bytearray()
        while chunk := await part.read_chunk(CHUNK):
            self._check_size(request)
            if keep:
                kept += chunk
        self._check_size(request)
        return bytes(kept)

    async def _read_all(self, request: web.Request) -> bytes:
        body = bytearray()
        while chunk := await request.content.readany():
            self._check_size(request)
            body += chunk
        self._check_size(request)
        return bytes(body)

    async def _drain(self, request: web.Request) -> None:
        """Read what follows the last part (an epilogue), still within the limit."""
        while await request.content.readany():
            self._check_size(request)

    def _check_size(self, request: web.Request) -> None:
        """Enforce the limit on what was received so far, whatever the headers said."""
        if request.content.total_bytes > self._max_body:
            raise _Rejected(413, "body too large")

    def _redact(self, text: str) -> str:
        text = _PLEX_PATH.sub(_MASKED, text)
        secret = self._secret
        return text.replace(secret, "***") if secret else text


# --- helpers ------------------------------------------------------------------------------------


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
        value = json.loads(data)
    except (ValueError, RecursionError) as err:  # JSONDecodeError, bad encodings, huge ints
        raise _Rejected(400, "payload is not JSON") from err
    if not isinstance(value, dict):
        raise _Rejected(400, "payload is not a JSON object")
    return value


def _safe_path(request: web.Request) -> str:
    try:
        path = request.path
    except Exception:
        return "?"
    return _MASKED if path.startswith("/plex") else path


def _is_loopback(remote: str | None) -> bool:
    """The peer's own address (never a forwarded header) is a loopback one."""
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


class _RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's error logger with `/plex/<secret>` masked, tracebacks included."""

    def __init__(self, logger: logging.Logger, redact: Callable[[str], str]) -> None:
        super().__init__(logger, {})
        self._redact = redact

    def log(
        self,
        level: int,
        msg: object,
        *args: object,
        exc_info: Any = None,
        **kwargs: Any,
    ) -> None:
        if not self.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = " ".join(map(str, (msg, *args)))
        if exc_info:
            if isinstance(exc_info, BaseException):
                exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
            elif not isinstance(exc_info, tuple):
                exc_info = None
            if exc_info is not None and exc_info[0] is not None:
                text += "\n" + "".join(traceback.format_exception(*exc_info)).rstrip()
        kwargs.pop("stack_info", None)
        kwargs.pop("stacklevel", None)
        self.logger.log(level, "%s", self._redact(text), **kwargs)
