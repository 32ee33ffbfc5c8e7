"""A stateful fake Plex Media Server (and the plex.tv endpoints of a login) on 127.0.0.1.

It follows Plex's documented shapes, in JSON (Plex answers JSON to `Accept: application/json`):
- `GET /identity` (no token), `GET /status/sessions` (the owner's token only; others get 403)
  with `User`, `Player`, `Session`, `TranscodeSession`; `GET /library/metadata/{ratingKey}`
  with the `Guid` list; every other call needs a known `X-Plex-Token` (else 401).
- `GET /:/websockets/notifications`: `{"NotificationContainer": {"type": "playing",
  "PlaySessionStateNotification": [{sessionKey, clientIdentifier, guid, ratingKey, url, key,
  viewOffset, playQueueItemID, state}]}}` the moment a client plays, pauses, seeks or stops;
  the owner's socket carries every session, another account's only its own.
- plex.tv: `POST /api/v2/pins` (`strong=true`), `GET /api/v2/pins/{id}` (an `authToken` once
  the test approves the PIN), `GET /api/v2/resources`, `GET /api/v2/user`.

It runs in a thread of its own, so that sync tests (a daemon subprocess) and async tests alike
drive it with plain calls: `play()`, `pause()`, `seek()`, `stop()`, `drop_websockets()`,
`restart()` (a server restart: sessions and sockets gone), `revoke()`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar

from aiohttp import WSMsgType, web

from tests import plex_payloads as px

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_START_TIMEOUT = 10.0
SERVER_ID = "5f1e0b3c8d7a4e2f9a6b1c0d3e2f1a0b9c8d7e6f"
OWNER_TOKEN = "owner-TOKEN-secret-0001"


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    title: str
    token: str
    owner: bool = False
    home: bool = False
    """A managed Plex Home user: its own id, no plex.tv login of its own."""


OWNER = Account(1, px.OWNER, OWNER_TOKEN, owner=True)
FRIEND = Account(2, "bob", "friend-TOKEN-secret-0002")
"""Someone the server is shared with."""
KID = Account(3, "kid", "kid-TOKEN-secret-0003", home=True)
"""A managed Home user."""


@dataclass(slots=True)
class Client:
    identifier: str
    title: str
    product: str = "Plex for Android (TV)"


TV = Client("tv-living-room-0a1b2c", "Living Room TV")
PHONE = Client("phone-bob-9f8e7d", "Bob's Phone", "Plex for iOS")


@dataclass(slots=True)
class Session:
    key: str
    rating_key: str
    client: Client
    account: Account
    state: str
    offset_ms: int
    transcode: bool = False


@dataclass(slots=True)
class Pin:
    id: int
    code: str
    client_identifier: str
    strong: bool
    auth_token: str | None = None


@dataclass
class FakePlex:
    """`with FakePlex() as plex:` serves on `plex.url` until the block ends."""

    accounts: tuple[Account, ...] = (OWNER, FRIEND, KID)
    port: int = 0
    library: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    pins: dict[int, Pin] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    """(method, path, headers) of every request, in order."""
    sent: list[dict[str, Any]] = field(default_factory=list)
    """Every notification sent, in order."""

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sockets: dict[web.WebSocketResponse, Account] = {}
        self._keys = itertools.count(10)
        self._pin_ids = itertools.count(7001)
        self.connects = 0
        if not self.library:
            self.library["1001"] = px.movie(duration=8_160_000)
            self.library["2002"] = px.episode(duration=3_480_000)
            self.library["3003"] = px.trailer()

    # --- lifecycle ----------------------------------------------------------------------------

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
        thread = threading.Thread(
            target=self._serve, args=(ready, failure), name="fake-plex", daemon=True
        )
        thread.start()
        if not ready.wait(_START_TIMEOUT) or failure:
            raise RuntimeError(f"the fake Plex did not start: {failure}")
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

    def restart(self, *, down_for: float = 0.0) -> None:
        """A server restart: every socket closes, the sessions are forgotten (clients report
        in again by themselves), and the same port serves again."""
        self.stop()
        with self._lock:
            self.sessions.clear()
        if down_for:
            time.sleep(down_for)
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
        app.router.add_get("/identity", self._identity)
        app.router.add_get("/status/sessions", self._sessions)
        app.router.add_get("/library/metadata/{key}", self._metadata)
        app.router.add_get("/library/sections", self._sections)
        app.router.add_get("/:/websockets/notifications", self._websocket)
        app.router.add_post("/api/v2/pins", self._new_pin)
        app.router.add_get("/api/v2/pins/{id}", self._get_pin)
        app.router.add_get("/api/v2/resources", self._resources)
        app.router.add_get("/api/v2/user", self._user)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.25)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        await site.start()
        self.port = runner.addresses[0][1]
        return runner

    def _call(self, make: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
        loop = self._loop
        if loop is None:
            raise RuntimeError("the fake Plex is not running")
        return asyncio.run_coroutine_threadsafe(make(), loop).result(_START_TIMEOUT)

    # --- what clients do ------------------------------------------------------------------

    def play(
        self,
        rating_key: str = "1001",
        *,
        account: Account = OWNER,
        client: Client = TV,
        offset_ms: int = 0,
        session_key: str | None = None,
        transcode: bool = False,
    ) -> str:
        """A client starts playing; returns the session key."""
        with self._lock:
            key = session_key or str(next(self._keys))
            session = Session(
                key, rating_key, client, account, "playing", offset_ms, transcode=transcode
            )
            self.sessions[key] = session
        self._notify(session)
        return key

    def pause(self, key: str, offset_ms: int) -> None:
        self._change(key, "paused", offset_ms)

    def resume(self, key: str, offset_ms: int) -> None:
        self._change(key, "playing", offset_ms)

    def seek(self, key: str, offset_ms: int) -> None:
        """A seek: Plex reports the session's state again with the new position."""
        with self._lock:
            state = self.sessions[key].state
        self._change(key, state, offset_ms)

    def buffer(self, key: str, offset_ms: int) -> None:
        self._change(key, "buffering", offset_ms)

    def stop_session(self, key: str, offset_ms: int) -> None:
        with self._lock:
            session = self.sessions.pop(key)
            session.state, session.offset_ms = "stopped", offset_ms
        self._notify(session)

    def forget_session(self, key: str) -> None:
        """The server loses a session without saying so (a client that died)."""
        with self._lock:
            self.sessions.pop(key, None)

    def _change(self, key: str, state: str, offset_ms: int) -> None:
        with self._lock:
            session = self.sessions[key]
            session.state, session.offset_ms = state, offset_ms
        self._notify(session)

    def _notify(self, session: Session) -> None:
        meta = self.library.get(session.rating_key, {})
        note = {
            "sessionKey": session.key,
            "clientIdentifier": session.client.identifier,
            "guid": meta.get("guid", ""),
            "ratingKey": session.rating_key,
            "url": "",
            "key": f"/library/metadata/{session.rating_key}",
            "viewOffset": session.offset_ms,
            "playQueueItemID": 21,
            "state": session.state,
        }
        message = {
            "NotificationContainer": {
                "type": "playing",
                "size": 1,
                "PlaySessionStateNotification": [note],
            }
        }
        self._call(lambda: self._broadcast(message, session.account))

    def send_raw(self, text: str) -> None:
        """Any text to every socket (malformed or unknown notifications)."""
        self._call(lambda: self._send_text(text))

    def drop_websockets(self) -> None:
        """Every notification socket breaks (a network blip); the server goes on."""
        self._call(self._close_sockets)

    def revoke(self, token: str) -> None:
        """The token is revoked (signed out everywhere): 401 from now on, sockets closed."""
        with self._lock:
            self.revoked.add(token)
        self._call(self._close_sockets)

    def approve_pin(self, code: str, account: Account = OWNER) -> None:
        """The user signed in at app.plex.tv/auth with this code."""
        with self._lock:
            for pin in self.pins.values():
                if pin.code == code:
                    pin.auth_token = account.token
                    return
        raise KeyError(code)

    def socket_count(self) -> int:
        return len(self._sockets)

    def wait_for_sockets(self, count: int = 1, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self._sockets) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {count} notification sockets in {timeout} s")
            time.sleep(0.01)

    def paths(self, prefix: str = "") -> list[str]:
        with self._lock:
            return [path for _, path, _ in self.requests if path.startswith(prefix)]

    # --- serving --------------------------------------------------------------------------

    async def _broadcast(self, message: dict[str, Any], owner_of: Account) -> None:
        self.sent.append(message)
        text = json.dumps(message)
        for ws, account in list(self._sockets.items()):
            if account.owner or account.id == owner_of.id:
                await ws.send_str(text)

    async def _send_text(self, text: str) -> None:
        for ws in list(self._sockets):
            await ws.send_str(text)

    async def _close_sockets(self) -> None:
        sockets = list(self._sockets)
        self._sockets.clear()
        for ws in sockets:
            await ws.close()

    def _record(self, request: web.Request) -> None:
        with self._lock:
            self.requests.append((request.method, request.path, dict(request.headers)))

    def _account(self, request: web.Request) -> Account:
        self._record(request)
        token = request.headers.get("X-Plex-Token") or request.query.get("X-Plex-Token", "")
        with self._lock:
            for account in self.accounts:
                if token == account.token and token not in self.revoked:
                    return account
        raise web.HTTPUnauthorized(text="Unauthorized")

    async def _identity(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response(
            {
                "MediaContainer": {
                    "size": 0,
                    "claimed": True,
                    "machineIdentifier": SERVER_ID,
                    "version": "1.41.3.9314-a0bfb8370",
                }
            }
        )

    async def _sections(self, request: web.Request) -> web.Response:
        self._account(request)
        return web.json_response({"MediaContainer": {"size": 2, "Directory": []}})

    async def _sessions(self, request: web.Request) -> web.Response:
        account = self._account(request)
        if not account.owner:
            raise web.HTTPForbidden(text="Forbidden")
        with self._lock:
            sessions = list(self.sessions.values())
        entries = []
        for s in sessions:
            entry = dict(self.library.get(s.rating_key, {}))
            entry.update(
                sessionKey=s.key,
                viewOffset=s.offset_ms,
                User={
                    "id": str(s.account.id),
                    "thumb": f"https://plex.tv/users/{s.account.id:x}/avatar",
                    "title": s.account.title,
                },
                Player={
                    "address": "192.0.2.20",
                    "machineIdentifier": s.client.identifier,
                    "platform": "Android",
                    "product": s.client.product,
                    "state": s.state,
                    "title": s.client.title,
                    "local": True,
                },
                Session={"id": f"sess-{s.key}", "bandwidth": 4000, "location": "lan"},
            )
            if s.transcode:
                entry["TranscodeSession"] = {
                    "key": f"/transcode/sessions/{s.key}",
                    "throttled": False,
                    "progress": 12.5,
                    "speed": 3.1,
                    "videoDecision": "transcode",
                    "audioDecision": "copy",
                }
            entries.append(entry)
        return web.json_response({"MediaContainer": {"size": len(entries), "Metadata": entries}})

    async def _metadata(self, request: web.Request) -> web.Response:
        self._account(request)
        meta = self.library.get(request.match_info["key"])
        if meta is None:
            raise web.HTTPNotFound()
        return web.json_response({"MediaContainer": {"size": 1, "Metadata": [meta]}})

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        account = self._account(request)
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self._sockets[ws] = account
        self.connects += 1
        try:
            async for msg in ws:
                if msg.type is WSMsgType.ERROR:
                    break
        finally:
            self._sockets.pop(ws, None)
        return ws

    # --- plex.tv ----------------------------------------------------------------------------

    async def _new_pin(self, request: web.Request) -> web.Response:
        self._record(request)
        client = request.headers.get("X-Plex-Client-Identifier", "")
        if not client or not request.headers.get("X-Plex-Product"):
            return web.json_response(
                {"errors": [{"code": 1000, "message": "X-Plex-Client-Identifier is missing"}]},
                status=400,
            )
        strong = request.query.get("strong") == "true"
        if not strong:
            form = await request.post()
            strong = form.get("strong") == "true"
        pin = Pin(next(self._pin_ids), f"c0de{len(self.pins):04d}zz", client, strong)
        with self._lock:
            self.pins[pin.id] = pin
        return web.json_response(self._pin_json(pin), status=201)

    async def _get_pin(self, request: web.Request) -> web.Response:
        self._record(request)
        try:
            pin = self.pins[int(request.match_info["id"])]
        except (KeyError, ValueError):
            return web.json_response(
                {"errors": [{"code": 1020, "message": "Code not found or expired"}]}, status=404
            )
        if request.headers.get("X-Plex-Client-Identifier") != pin.client_identifier:
            return web.json_response(
                {"errors": [{"code": 1020, "message": "Code not found or expired"}]}, status=404
            )
        return web.json_response(self._pin_json(pin))

    @staticmethod
    def _pin_json(pin: Pin) -> dict[str, Any]:
        return {
            "id": pin.id,
            "code": pin.code,
            "product": "trakt-scrobbled",
            "trusted": False,
            "qr": f"https://plex.tv/api/v2/pins/qr/{pin.code}",
            "clientIdentifier": pin.client_identifier,
            "location": {"code": "FR", "country": "France"},
            "expiresIn": 1800,
            "createdAt": "2026-12-06T05:00:00Z",
            "expiresAt": "2026-12-06T05:30:00Z",
            "authToken": pin.auth_token,
            "newRegistration": None,
        }

    async def _resources(self, request: web.Request) -> web.Response:
        account = self._account(request)
        server = {
            "name": "Office",
            "product": "Plex Media Server",
            "productVersion": "1.41.3.9314-a0bfb8370",
            "platform": "Linux",
            "clientIdentifier": SERVER_ID,
            "provides": "server",
            "owned": account.owner,
            "accessToken": account.token,
            "presence": True,
            "connections": [
                {
                    "protocol": "http",
                    "address": "203.0.113.9",
                    "port": 32400,
                    "uri": "http://203.0.113.9:1",
                    "local": False,
                    "relay": False,
                    "IPv6": False,
                },
                {
                    "protocol": "http",
                    "address": "127.0.0.1",
                    "port": self.port,
                    "uri": self.url,
                    "local": True,
                    "relay": False,
                    "IPv6": False,
                },
            ],
        }
        player = {
            "name": "Living Room TV",
            "product": "Plex for Android (TV)",
            "clientIdentifier": TV.identifier,
            "provides": "player,pubsub-player",
            "owned": True,
            "connections": [],
        }
        return web.json_response([player, server])

    async def _user(self, request: web.Request) -> web.Response:
        account = self._account(request)
        return web.json_response(
            {
                "id": account.id,
                "uuid": f"uuid-{account.id}",
                "username": account.title,
                "title": account.title,
                "email": f"{account.title}@example.org",
            }
        )
