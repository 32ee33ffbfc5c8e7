"""A client of one Plex Media Server: its sessions, its library metadata, its notifications.

Plex answers XML unless asked for JSON; every request here asks for JSON and sends the token
as the `X-Plex-Token` header, never in a URL, so that no log line and no error message can
carry it. Errors are translated into `PlexError`s whose messages name the host, never the URL.
The notification websocket uses httpx-ws on the same httpx client (one HTTP stack, one set of
timeouts), imported only when live mode connects.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from trakt_scrobbled import __version__
from trakt_scrobbled.clock import Clock
from trakt_scrobbled.players.plex import _dict, _key_text, _list, _millis, _text

__all__ = [
    "PlexError",
    "PlexForbidden",
    "PlexNotFound",
    "PlexServer",
    "PlexSession",
    "PlexUnauthorized",
    "PlexUnreachable",
    "plex_headers",
]

log = logging.getLogger(__name__)

PRODUCT = "trakt-scrobbled"
NOTIFICATIONS = "/:/websockets/notifications"
TIMEOUT = 5.0
"""Seconds for one request to the server (it is on the LAN, or should answer as if it were)."""
METADATA_CACHE = 64
"""Items whose metadata is kept; a household plays a few at a time."""
METADATA_TTL = 3600.0
"""Seconds metadata is trusted (a fixed match shows up within the hour)."""
READ_CHUNK = 1 << 16
"""Bytes read from the websocket at a time (httpx-ws's `max_message_size_bytes`)."""
KEEPALIVE = 20.0
"""Seconds between websocket pings; a server that does not answer one in as long is gone."""


class PlexError(Exception):
    """The Plex server did not give an answer; the message is safe to show (no token, no URL)."""


class PlexUnauthorized(PlexError):
    """401: the token is wrong, expired or revoked."""


class PlexForbidden(PlexError):
    """403: the token is valid but may not see this (e.g. another account's sessions)."""


class PlexNotFound(PlexError):
    """404: no such item (or no such endpoint: not a Plex server)."""


class PlexUnreachable(PlexError):
    """No answer at all, or one that is not Plex's: refused, timed out, not JSON."""


@dataclass(frozen=True, slots=True)
class PlexSession:
    """One entry of `/status/sessions`: who plays what, where."""

    session_key: str
    rating_key: str | None
    client: str | None
    """The player's `machineIdentifier` (the `clientIdentifier` of notifications)."""
    player_title: str
    state: str | None
    """`playing`, `paused`, `buffering`."""
    offset: float | None
    """Seconds; None when Plex said none (or 0)."""
    account_id: str | None
    account: str | None


def plex_headers(client_identifier: str, token: str = "") -> dict[str, str]:
    """What every request to Plex (server or plex.tv) says about us."""
    headers = {
        "Accept": "application/json",
        "X-Plex-Product": PRODUCT,
        "X-Plex-Version": __version__,
        "X-Plex-Client-Identifier": client_identifier,
    }
    if token:
        headers["X-Plex-Token"] = token
    return headers


def host_of(url: str) -> str:
    """The host to name in messages: never the whole URL (it may hold a token)."""
    try:
        return httpx.URL(url).host or "?"
    except Exception:
        return "?"


def _sessions(data: object) -> list[PlexSession]:
    out: list[PlexSession] = []
    for entry in _list(_dict(_dict(data).get("MediaContainer")).get("Metadata")):
        entry = _dict(entry)
        key = _key_text(entry.get("sessionKey"))
        if key is None:
            continue
        player = _dict(entry.get("Player"))
        user = _dict(entry.get("User"))
        out.append(
            PlexSession(
                session_key=key,
                rating_key=_key_text(entry.get("ratingKey")),
                client=_key_text(player.get("machineIdentifier")),
                player_title=_text(player.get("title")) or "Plex player",
                state=_text(player.get("state")),
                offset=_millis(entry.get("viewOffset")),
                account_id=_key_text(user.get("id")),
                account=_text(user.get("title")),
            )
        )
    return out


class PlexServer:
    """One server, one token. `aclose()` (or `async with`) when done."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        client_identifier: str,
        clock: Clock,
        timeout: float = TIMEOUT,
    ) -> None:
        self.url = url.rstrip("/")
        self.host = host_of(self.url)
        self._clock = clock
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers=plex_headers(client_identifier, token),
            timeout=timeout,
            follow_redirects=False,
        )
        self._metadata: OrderedDict[str, tuple[float, Mapping[str, Any]]] = OrderedDict()

    async def __aenter__(self) -> PlexServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get(self, path: str) -> object:
        try:
            response = await self._http.get(path)
        except httpx.HTTPError as err:
            raise PlexUnreachable(
                f"the Plex server at {self.host} did not answer ({type(err).__name__})"
            ) from err
        _raise_for(response, self.host, path)
        try:
            return response.json()
        except ValueError as err:
            raise PlexUnreachable(
                f"the Plex server at {self.host} answered {path} with something not JSON"
            ) from err

    async def identity(self) -> Mapping[str, Any]:
        """`/identity`: the server's machineIdentifier and version (no token needed)."""
        return _dict(_dict(await self._get("/identity")).get("MediaContainer"))

    async def sessions(self) -> list[PlexSession]:
        """Every play the token may see; `PlexForbidden` for a token not the owner's."""
        return _sessions(await self._get("/status/sessions"))

    async def metadata(self, rating_key: str) -> Mapping[str, Any] | None:
        """The library item (with its `Guid` ids), from a small cache; None when not found."""
        now = self._clock.monotonic()
        cached = self._metadata.get(rating_key)
        if cached is not None and now - cached[0] < METADATA_TTL:
            self._metadata.move_to_end(rating_key)
            return cached[1]
        if not rating_key.isascii() or not rating_key.isdecimal():
            return None  # a ratingKey is a number: anything else never reaches a URL
        try:
            data = await self._get(f"/library/metadata/{rating_key}?includeGuids=1")
        except (PlexForbidden, PlexNotFound):
            return None
        items = _list(_dict(_dict(data).get("MediaContainer")).get("Metadata"))
        meta = _dict(items[0]) if items else None
        if meta is None:
            return None
        self._metadata[rating_key] = (now, meta)
        self._metadata.move_to_end(rating_key)
        while len(self._metadata) > METADATA_CACHE:
            self._metadata.popitem(last=False)
        return meta

    async def listen(self, on_open: Callable[[], None], on_message: Callable[[str], None]) -> None:
        """Follow the notification websocket until it closes; raises `PlexError` on failure.

        `on_open` runs once the server accepted the connection; `on_message` gets each text
        message, on the loop, in order. Neither may raise. Returns when the server closed it.
        """
        from httpx_ws import WebSocketUpgradeError

        try:
            await self._follow(on_open, on_message)
        except WebSocketUpgradeError as err:
            _raise_for(err.response, self.host, NOTIFICATIONS)
            raise PlexUnreachable(
                f"the Plex server at {self.host} refused the notification websocket "
                f"(HTTP {err.response.status_code})"
            ) from err
        except httpx.HTTPError as err:
            raise PlexUnreachable(
                f"the Plex server at {self.host} did not answer ({type(err).__name__})"
            ) from err
        except ExceptionGroup as group:  # from httpx-ws's background tasks
            raise PlexUnreachable(f"the connection to {self.host} broke") from group

    async def open_notifications(self) -> None:
        """Open the notification websocket and close it again: does the server take us?"""
        try:
            await self.listen(_stop_at_open, _ignore)
        except _Opened:
            return
        except PlexUnreachable as err:
            if isinstance(err.__cause__, ExceptionGroup) and err.__cause__.subgroup(_Opened):
                return
            raise

    async def _follow(self, on_open: Callable[[], None], on_message: Callable[[str], None]) -> None:
        from httpx_ws import (
            AsyncWebSocketSession,
            WebSocketDisconnect,
            WebSocketNetworkError,
            aconnect_ws,
        )
        from wsproto.events import BytesMessage, TextMessage

        broke = False
        ws: AsyncWebSocketSession
        async with aconnect_ws(
            NOTIFICATIONS,
            self._http,
            max_message_size_bytes=READ_CHUNK,
            keepalive_ping_interval_seconds=KEEPALIVE,
            keepalive_ping_timeout_seconds=KEEPALIVE,
        ) as ws:
            on_open()
            while True:
                try:
                    event = await ws.receive()
                except WebSocketDisconnect:
                    break
                except WebSocketNetworkError:
                    broke = True
                    break
                if isinstance(event, TextMessage):
                    on_message(event.data)
                elif isinstance(event, BytesMessage):
                    on_message(event.data.decode("utf-8", "replace"))
        if broke:
            raise PlexUnreachable(f"the connection to {self.host} broke")


class _Opened(Exception):
    pass


def _stop_at_open() -> None:
    raise _Opened


def _ignore(_: str) -> None:
    return None


def _raise_for(response: httpx.Response, host: str, path: str) -> None:
    status = response.status_code
    what = path.split("?", 1)[0]
    if status == 401:
        raise PlexUnauthorized(
            f"the Plex server at {host} refused the token (401): it is wrong, expired or "
            "revoked; run `trakt-scrobbled plex login`"
        )
    if status == 403:
        raise PlexForbidden(f"the Plex server at {host} does not let this token see {what} (403)")
    if status == 404:
        raise PlexNotFound(f"the Plex server at {host} has no {what} (404)")
    if status >= 400:
        raise PlexUnreachable(f"the Plex server at {host} answered {what} with HTTP {status}")
    if status >= 300:
        raise PlexUnreachable(f"the Plex server at {host} redirected {what} (HTTP {status})")
