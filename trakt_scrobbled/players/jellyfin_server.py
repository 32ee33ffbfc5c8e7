"""A client of one Jellyfin (or Emby) server: who it is, its users, its sessions, its socket.

Both servers speak the same REST dialect (Emby's is Jellyfin's ancestor): `GET /System/Info`,
`GET /Users/Me` (for a user's token), `GET /Users`, `GET /Sessions`, and a WebSocket that, once
sent `SessionsStart`, pushes every session's state as it changes. The key goes in a header on
REST calls; the WebSocket can only take it in its query (`api_key=`), so no URL is ever put in a
log line or an error message here: errors name the host. Errors are `MediaServerError`s.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from trakt_scrobbled import __version__

__all__ = [
    "Flavour",
    "MediaServer",
    "MediaServerError",
    "MediaServerUnauthorized",
    "MediaServerUnreachable",
    "Owner",
]

log = logging.getLogger(__name__)

PRODUCT = "trakt-scrobbled"
TIMEOUT = 5.0
"""Seconds for one request (the server is on the LAN, or should answer as if it were)."""
MAX_MESSAGE = 4 << 20
"""Bytes: a `Sessions` message lists every session with its item; bigger ones are refused."""
PING_EVERY = 20.0
"""Seconds between WebSocket pings; a server that does not answer one in as long is gone."""
SUBSCRIBE = json.dumps({"MessageType": "SessionsStart", "Data": "0,1500"})
"""Sessions now, then at most every 1.5 s while they change (Jellyfin's own dashboard asks so)."""
KEEPALIVE = json.dumps({"MessageType": "KeepAlive"})


class Flavour(StrEnum):
    """Which server: the two differ in their socket's path and how they take a key."""

    JELLYFIN = "jellyfin"
    EMBY = "emby"

    @property
    def label(self) -> str:
        return "Jellyfin" if self is Flavour.JELLYFIN else "Emby"

    @property
    def socket_path(self) -> str:
        return "/socket" if self is Flavour.JELLYFIN else "/embywebsocket"


class MediaServerError(Exception):
    """The server gave no usable answer; the message is safe to show (no key, no URL)."""


class MediaServerUnauthorized(MediaServerError):
    """401/403: the key is wrong, revoked, or may not do this."""


class MediaServerUnreachable(MediaServerError):
    """No answer, or one that is not the server's (refused, timed out, not JSON, 5xx)."""


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose plays count when no `users` are listed: the key's own user, else the admins."""

    ids: frozenset[str]
    names: tuple[str, ...]
    admin: bool = True
    """Whether the key may follow every session (an API key, or an administrator's token):
    a plain user's token may not subscribe to sessions at all."""


def host_of(url: str) -> str:
    """The host to name in messages: never the whole URL."""
    try:
        return httpx.URL(url).host or "?"
    except Exception:
        return "?"


def auth_headers(flavour: Flavour, key: str, device_id: str) -> dict[str, str]:
    """What every request says about us, with the key."""
    identity = (
        f'Client="{PRODUCT}", Device="{PRODUCT}", DeviceId="{device_id}", Version="{__version__}"'
    )
    headers = {"Accept": "application/json"}
    if flavour is Flavour.JELLYFIN:
        headers["Authorization"] = f'MediaBrowser {identity}, Token="{key}"'
    else:
        headers["X-Emby-Authorization"] = f"MediaBrowser {identity}"
        headers["X-Emby-Token"] = key
    return headers


class MediaServer:
    """One server, one key. `aclose()` (or `async with`) when done."""

    def __init__(
        self,
        flavour: Flavour,
        url: str,
        key: str,
        *,
        device_id: str = PRODUCT,
        timeout: float = TIMEOUT,
    ) -> None:
        self.flavour = flavour
        self.url = url.rstrip("/")
        self.host = host_of(self.url)
        self._key = key
        self._device_id = device_id
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers=auth_headers(flavour, key, device_id),
            timeout=timeout,
            follow_redirects=False,
        )

    async def __aenter__(self) -> MediaServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get(self, path: str) -> object:
        try:
            response = await self._http.get(path)
        except httpx.HTTPError as err:
            raise MediaServerUnreachable(
                f"the {self.flavour.label} server at {self.host} did not answer "
                f"({type(err).__name__})"
            ) from err
        self._raise_for(response.status_code, path)
        try:
            return response.json()
        except ValueError as err:
            raise MediaServerUnreachable(
                f"the {self.flavour.label} server at {self.host} answered {path} with something "
                "not JSON"
            ) from err

    def _raise_for(self, status: int, path: str) -> None:
        name = f"the {self.flavour.label} server at {self.host}"
        if status in (401, 403):
            raise MediaServerUnauthorized(
                f"{name} refused the API key on {path} ({status}): it is wrong, revoked, or not "
                "an administrator's"
            )
        if status >= 300:
            raise MediaServerUnreachable(f"{name} answered {path} with HTTP {status}")

    async def info(self) -> Mapping[str, Any]:
        """`/System/Info`: the server's name, version and id (checks the key too)."""
        data = await self._get("/System/Info")
        return data if isinstance(data, dict) else {}

    async def owner(self) -> Owner:
        """The key's own user (a user's access token), else the server's administrators."""
        try:
            me = await self._get("/Users/Me")
        except MediaServerUnauthorized:
            raise
        except MediaServerError:
            me = None  # an API key is nobody: 400 on Jellyfin, 404 on older servers
        if isinstance(me, dict) and isinstance(me.get("Id"), str):
            policy = me.get("Policy")
            admin = isinstance(policy, dict) and policy.get("IsAdministrator") is True
            return Owner(frozenset({me["Id"]}), (str(me.get("Name") or "?"),), admin)
        users = await self._get("/Users")
        admins = [
            u
            for u in (users if isinstance(users, list) else [])
            if isinstance(u, dict)
            and isinstance(u.get("Id"), str)
            and isinstance(u.get("Policy"), dict)
            and u["Policy"].get("IsAdministrator") is True
        ]
        return Owner(
            frozenset(u["Id"] for u in admins), tuple(str(u.get("Name") or "?") for u in admins)
        )

    async def sessions(self) -> list[Mapping[str, Any]]:
        """`/Sessions`: every session the key may see, with what it plays."""
        data = await self._get("/Sessions")
        if not isinstance(data, list):
            raise MediaServerUnreachable(
                f"the {self.flavour.label} server at {self.host} answered /Sessions with "
                "something not a list"
            )
        return [s for s in data if isinstance(s, dict)]

    async def listen(
        self,
        on_open: Callable[[], None],
        on_message: Callable[[str], None],
        *,
        keepalive: Callable[[], float | None] | None = None,
    ) -> None:
        """Follow the WebSocket until it closes; raises `MediaServerError` on failure.

        `on_open` runs once the server accepted it and our subscription is sent; `on_message`
        gets each text message, in order. `keepalive` says how often to send `KeepAlive` (the
        server's `ForceKeepAlive` tells), None for never. Returns when the server closed it.
        """
        from httpx_ws import WebSocketUpgradeError

        try:
            await self._follow(on_open, on_message, keepalive)
        except WebSocketUpgradeError as err:
            self._raise_for(err.response.status_code, self.flavour.socket_path)
            raise MediaServerUnreachable(
                f"the {self.flavour.label} server at {self.host} refused the WebSocket "
                f"(HTTP {err.response.status_code})"
            ) from err
        except httpx.HTTPError as err:
            raise MediaServerUnreachable(
                f"the {self.flavour.label} server at {self.host} did not answer "
                f"({type(err).__name__})"
            ) from err
        except ExceptionGroup as group:  # from httpx-ws's background tasks
            raise MediaServerUnreachable(f"the connection to {self.host} broke") from group

    async def _follow(
        self,
        on_open: Callable[[], None],
        on_message: Callable[[str], None],
        keepalive: Callable[[], float | None] | None,
    ) -> None:
        import anyio
        from httpx_ws import (
            AsyncWebSocketSession,
            WebSocketDisconnect,
            WebSocketNetworkError,
            aconnect_ws,
        )
        from wsproto.events import BytesMessage, TextMessage

        broke = False
        ws: AsyncWebSocketSession
        params = {"api_key": self._key, "deviceId": self._device_id}
        async with aconnect_ws(
            self.flavour.socket_path,
            self._http,
            params=params,
            max_message_size_bytes=MAX_MESSAGE,
            keepalive_ping_interval_seconds=PING_EVERY,
            keepalive_ping_timeout_seconds=PING_EVERY,
        ) as ws:
            await ws.send_text(SUBSCRIBE)
            on_open()
            last_keepalive = anyio.current_time()
            while True:
                every = keepalive() if keepalive is not None else None
                try:
                    if every is None:
                        event = await ws.receive()
                    else:
                        due = last_keepalive + every - anyio.current_time()
                        event = await ws.receive(timeout=max(due, 0.0))
                except TimeoutError:
                    await ws.send_text(KEEPALIVE)
                    last_keepalive = anyio.current_time()
                    continue
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
            raise MediaServerUnreachable(f"the connection to {self.host} broke")
