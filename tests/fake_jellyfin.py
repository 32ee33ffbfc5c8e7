"""A stateful fake Jellyfin (or Emby) server on 127.0.0.1, following Jellyfin's documented API.

- Auth: an API key or a user's access token, as `Authorization: MediaBrowser … Token="…"`,
  `X-Emby-Token`, or (the WebSocket only can) `?api_key=`; anything else is 401.
- `GET /System/Info`; `GET /Users/Me` (a user's token; an API key is nobody: 400);
  `GET /Users` (administrators and API keys; others 403); `GET /Sessions` (every session for
  an administrator or an API key, a user's own otherwise): `SessionInfo` objects with `UserId`,
  `UserName`, `DeviceId`, `DeviceName`, `Client`, `LastPlaybackCheckIn`, `NowPlayingItem`
  (a `BaseItemDto` with `ProviderIds`, `RunTimeTicks`, `IndexNumber`...) and `PlayState`
  (`PositionTicks`, `IsPaused`).
- `GET /socket` (Emby: `/embywebsocket`): sends `ForceKeepAlive` at once, answers `KeepAlive`
  with `KeepAlive`, and after `SessionsStart` (administrators and API keys only) pushes
  `{"MessageType": "Sessions", "Data": [...]}` whenever a session changes.

Runs in a thread of its own; tests drive it with plain calls: `play()`, `pause()`, `resume()`,
`seek()`, `progress()`, `stop()`, `restart()`, `drop_websockets()`, `send_raw()`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar

from aiohttp import WSMsgType, web

_T = TypeVar("_T")
_START_TIMEOUT = 10.0
TICKS = 10_000_000
API_KEY = "jfAPIkey0123456789abcdef"
SERVER_ID = "f3b8c0de5a4e4c1c9d2b7a6e5f4d3c2b"


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    token: str
    admin: bool = False


ALICE = User("a11ce0000000000000000000000000a1", "alice", "alice-TOKEN-0001", admin=True)
BOB = User("b0b00000000000000000000000000b0b", "bob", "bob-TOKEN-0002")


def movie(item_id: str = "mv1", *, runtime: float = 8160.0) -> dict[str, Any]:
    return {
        "Name": "The Matrix",
        "ServerId": SERVER_ID,
        "Id": item_id,
        "Type": "Movie",
        "MediaType": "Video",
        "ProductionYear": 1999,
        "RunTimeTicks": int(runtime * TICKS),
        "ProviderIds": {"Imdb": "tt0133093", "Tmdb": "603"},
        "Path": "/media/movies/The Matrix (1999)/The Matrix (1999).mkv",
    }


def episode(
    item_id: str = "ep1", *, runtime: float = 3480.0, number: int = 1, end: int | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "Name": "Pilot",
        "ServerId": SERVER_ID,
        "Id": item_id,
        "Type": "Episode",
        "MediaType": "Video",
        "ProductionYear": 2008,
        "RunTimeTicks": int(runtime * TICKS),
        "SeriesName": "Breaking Bad",
        "SeriesId": "sr1",
        "SeasonId": "ss1",
        "ParentIndexNumber": 1,
        "IndexNumber": number,
        "ProviderIds": {"Tvdb": "349232", "Imdb": "tt0959621"} if end is None else {},
    }
    if end is not None:
        item["IndexNumberEnd"] = end
    return item


def trailer() -> dict[str, Any]:
    return {"Name": "Trailer", "Id": "tr1", "Type": "Trailer", "RunTimeTicks": 120 * TICKS}


@dataclass(slots=True)
class Session:
    device_id: str
    device_name: str
    user: User
    item: dict[str, Any] | None = None
    position: float = 0.0
    paused: bool = False
    checkins: int = 0

    def info(self) -> dict[str, Any]:
        check_in = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=self.checkins)
        data: dict[str, Any] = {
            "Id": f"s-{self.device_id}",
            "UserId": self.user.id,
            "UserName": self.user.name,
            "Client": "Jellyfin Web",
            "DeviceId": self.device_id,
            "DeviceName": self.device_name,
            "ApplicationVersion": "10.10.3",
            "IsActive": True,
            "LastPlaybackCheckIn": check_in.isoformat().replace("+00:00", "Z"),
            "PlayState": {
                "CanSeek": True,
                "IsPaused": self.paused,
                "IsMuted": False,
                "RepeatMode": "RepeatNone",
                "PlayMethod": "DirectPlay",
            },
            "SupportsRemoteControl": True,
        }
        if self.item is not None:
            data["NowPlayingItem"] = self.item
            data["PlayState"]["PositionTicks"] = int(self.position * TICKS)
            data["PlayState"]["PlaySessionId"] = f"ps-{self.device_id}"
        return data


@dataclass
class FakeJellyfin:
    """`with FakeJellyfin() as jf:` serves on `jf.url` until the block ends."""

    emby: bool = False
    port: int = 0
    keepalive: int = 60
    """Seconds `ForceKeepAlive` gives clients (they send `KeepAlive` every half of it)."""
    users: tuple[User, ...] = (ALICE, BOB)
    sessions: dict[str, Session] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    """(method, path) of every request, in order."""
    received: list[str] = field(default_factory=list)
    """Every text message a client sent on a socket."""

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sockets: dict[web.WebSocketResponse, bool] = {}
        """Each socket, and whether it subscribed to sessions."""
        self.connects = 0
        self.pushed: list[float] = []
        """`time.monotonic()` of each `Sessions` message pushed (the bench's clock)."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        ready = threading.Event()
        failure: list[BaseException] = []
        thread = threading.Thread(target=self._serve, args=(ready, failure), daemon=True)
        thread.start()
        if not ready.wait(_START_TIMEOUT) or failure:
            raise RuntimeError(f"the fake Jellyfin did not start: {failure}")
        self._thread = thread
        return self

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._close_sockets(), loop).result(_START_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_START_TIMEOUT)
        self._thread = self._loop = None

    def restart(self) -> None:
        """A server restart: sockets close, sessions are forgotten until clients report in."""
        self.stop()
        with self._lock:
            self.sessions.clear()
        self.start()

    def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        try:
            runner = loop.run_until_complete(self._open())
        except Exception as err:
            failure.append(err)
            loop.close()
            ready.set()
            return
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    async def _open(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/System/Info", self._info)
        app.router.add_get("/Users/Me", self._me)
        app.router.add_get("/Users", self._users)
        app.router.add_get("/Sessions", self._sessions)
        app.router.add_get("/embywebsocket" if self.emby else "/socket", self._websocket)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.25)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        await site.start()
        self.port = runner.addresses[0][1]
        return runner

    def _call(self, make: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
        loop = self._loop
        if loop is None:
            raise RuntimeError("the fake Jellyfin is not running")
        return asyncio.run_coroutine_threadsafe(make(), loop).result(_START_TIMEOUT)

    # --- what clients do ------------------------------------------------------------------

    def play(
        self,
        device: str,
        user: User,
        item: dict[str, Any],
        position: float = 0.0,
        *,
        paused: bool = False,
    ) -> None:
        with self._lock:
            session = self.sessions.get(device) or Session(device, f"TV {device}", user)
            session.user, session.item, session.position, session.paused = (
                user,
                item,
                position,
                paused,
            )
            session.checkins += 1
            self.sessions[device] = session
        self._push()

    def _report(self, device: str, position: float, paused: bool | None = None) -> None:
        with self._lock:
            session = self.sessions[device]
            session.position = position
            if paused is not None:
                session.paused = paused
            session.checkins += 1
        self._push()

    def progress(self, device: str, position: float) -> None:
        self._report(device, position)

    def pause(self, device: str, position: float) -> None:
        self._report(device, position, True)

    def resume(self, device: str, position: float) -> None:
        self._report(device, position, False)

    def seek(self, device: str, position: float) -> None:
        self._report(device, position)

    def stop_playing(self, device: str, position: float) -> None:
        """The client stops: its session stays, with nothing playing."""
        with self._lock:
            session = self.sessions[device]
            session.item, session.position, session.paused = None, position, False
            session.checkins += 1
        self._push()

    def send_raw(self, text: str) -> None:
        self._call(lambda: self._send_all(text))

    def drop_websockets(self) -> None:
        self._call(self._close_sockets)

    def socket_count(self) -> int:
        return len(self._sockets)

    def subscribed(self) -> int:
        """Sockets subscribed to sessions (wait on it with the test's own bounded wait)."""
        return sum(self._sockets.values())

    def _push(self) -> None:
        if self._loop is not None:
            self._call(self._push_sessions)

    # --- serving --------------------------------------------------------------------------

    def _snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [s.info() for s in self.sessions.values()]

    async def _push_sessions(self) -> None:
        text = json.dumps({"MessageType": "Sessions", "Data": self._snapshot()})
        self.pushed.append(time.monotonic())
        for ws, subscribed in list(self._sockets.items()):
            if subscribed and not ws.closed:
                await ws.send_str(text)

    async def _send_all(self, text: str) -> None:
        for ws in list(self._sockets):
            await ws.send_str(text)

    async def _close_sockets(self) -> None:
        sockets = list(self._sockets)
        self._sockets.clear()
        for ws in sockets:
            await ws.close()

    def _token(self, request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "") or request.headers.get(
            "X-Emby-Authorization", ""
        )
        if match := re.search(r'Token="([^"]*)"', auth):
            return match.group(1)
        return request.headers.get("X-Emby-Token") or request.query.get("api_key")

    def _caller(self, request: web.Request) -> User | str:
        """The user a token belongs to, `"key"` for the API key; 401 for anything else."""
        with self._lock:
            self.requests.append((request.method, request.path))
        token = self._token(request)
        if token == API_KEY:
            return "key"
        for user in self.users:
            if token == user.token:
                return user
        raise web.HTTPUnauthorized(text="Unauthorized")

    async def _info(self, request: web.Request) -> web.Response:
        self._caller(request)
        name = "Emby Server" if self.emby else "Jellyfin Server"
        return web.json_response({"ServerName": name, "Version": "10.10.3", "Id": SERVER_ID})

    async def _me(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        if not isinstance(caller, User):
            raise web.HTTPBadRequest(text="Error processing request.")
        return web.json_response(self._user_json(caller))

    def _user_json(self, user: User) -> dict[str, Any]:
        return {"Name": user.name, "Id": user.id, "Policy": {"IsAdministrator": user.admin}}

    async def _users(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        if isinstance(caller, User) and not caller.admin:
            raise web.HTTPForbidden()
        return web.json_response([self._user_json(u) for u in self.users])

    async def _sessions(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        sessions = self._snapshot()
        if isinstance(caller, User) and not caller.admin:
            sessions = [s for s in sessions if s["UserId"] == caller.id]
        return web.json_response(sessions)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        caller = self._caller(request)
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self._sockets[ws] = False
        self.connects += 1
        await ws.send_str(json.dumps({"MessageType": "ForceKeepAlive", "Data": self.keepalive}))
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    break
                self.received.append(msg.data)
                try:
                    kind = json.loads(msg.data).get("MessageType")
                except ValueError:
                    continue
                if kind == "KeepAlive":
                    await ws.send_str(json.dumps({"MessageType": "KeepAlive"}))
                elif kind == "SessionsStart" and (caller == "key" or getattr(caller, "admin", 0)):
                    self._sockets[ws] = True
                    text = json.dumps({"MessageType": "Sessions", "Data": self._snapshot()})
                    await ws.send_str(text)
        finally:
            self._sockets.pop(ws, None)
        return ws
