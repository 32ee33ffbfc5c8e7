"""The fake Trakt over real HTTP: an aiohttp app on 127.0.0.1, served from its own thread.

Its own thread and loop let one fake serve sync tests, async tests (whatever their loop does)
and the daemon running as a subprocess. Everything a test calls is guarded by one lock; the
request handlers take the same lock, never across an `await`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from trakt_scrobbled.clock import Clock, SystemClock
from trakt_scrobbled.events import Ids

from .catalogue import Catalogue, Episode, Item, Movie, Show
from .faults import Fault, FaultKind, FaultPlan
from .state import (
    DeviceCode,
    DeviceStatus,
    FakeConfig,
    HistoryAction,
    HistoryEntry,
    PlaybackEntry,
    Reply,
    ScrobbleVerb,
    TokenPair,
    TraktState,
    Watching,
    rate_limited,
)

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
_START_TIMEOUT = 10.0
_BODY = web.RequestKey[dict[str, Any]]("fake_trakt_body", dict)
_USER = web.RequestKey[str]("fake_trakt_user", str)
MAIN_USER = "me"
"""The user of a fake that was never given another (`add_user`)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake saw it; headers and body stay out of repr (they hold secrets)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str] = field(repr=False)
    """Lowercased names."""
    json: Any = field(repr=False)
    """The parsed body, or None when it was empty or not JSON."""
    status: int | None
    """What was answered; None when the connection was dropped instead."""
    monotonic: float
    """Arrival, `time.monotonic()`."""
    wall: float
    """Arrival, `time.time()`."""
    fault: FaultKind | None = None
    user: str = "me"
    """The Trakt user whose token the request carried (`MAIN_USER` without one)."""


def _response(reply: Reply) -> web.Response:
    if reply.body is None:
        return web.Response(status=reply.status, headers=dict(reply.headers))
    return web.json_response(reply.body, status=reply.status, headers=dict(reply.headers))


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


class FakeTrakt:
    """A stateful fake of api.trakt.tv for one user.

    `with FakeTrakt() as fake:` serves on `fake.url` until the block ends. Catalogue, tokens,
    faults and state accessors may be used before, during and after serving; `start()` after
    `stop()` serves again on the same port with the same state.
    """

    def __init__(
        self,
        client_id: str = "test-client-id",
        client_secret: str = "test-secret",  # noqa: S107 - a test value
        *,
        port: int = 0,
        clock: Clock | None = None,
        token_lifetime: float = 7 * 86400,
        device_interval: float = 1.0,
        device_expires_in: float = 600.0,
        post_interval: float = 1.0,
        get_limit: int = 1000,
        get_period: float = 300.0,
        scrobble_window: float = 3600.0,
        auto_approve: bool = False,
    ) -> None:
        self.config = FakeConfig(
            client_id=client_id,
            client_secret=client_secret,
            token_lifetime=token_lifetime,
            device_interval=device_interval,
            device_expires_in=device_expires_in,
            post_interval=post_interval,
            get_limit=get_limit,
            get_period=get_period,
            scrobble_window=scrobble_window,
            auto_approve=auto_approve,
        )
        self._port = port
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._catalogue = Catalogue()
        self._users_clock: Clock = clock or SystemClock()
        self._state = TraktState(self.config, self._users_clock, self._catalogue)
        self._users: dict[str, TraktState] = {MAIN_USER: self._state}
        """Trakt users by name, each with its own tokens, history, playback and POST spacing
        (Trakt's limits are per user): a request is the user's whose token it carries."""
        self._faults = FaultPlan()
        self._records: list[RecordedRequest] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle -------------------------------------------------------------------------

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
        if self._thread is None:
            raise RuntimeError("the fake Trakt is not running")
        return f"http://127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("the fake Trakt is already running")
        ready = threading.Event()
        failure: list[BaseException] = []
        thread = threading.Thread(
            target=self._serve, args=(ready, failure), name="fake-trakt", daemon=True
        )
        thread.start()
        if not ready.wait(_START_TIMEOUT):
            raise RuntimeError("the fake Trakt did not start in time")
        if failure:
            thread.join(_START_TIMEOUT)
            raise RuntimeError(f"the fake Trakt could not listen: {failure[0]}") from failure[0]
        self._thread = thread
        log.info("fake trakt: serving on %s", self.url)
        return self

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_START_TIMEOUT)
        self._thread = self._loop = None

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
        runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=0.25)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._port = runner.addresses[0][1]
        return runner

    # --- the catalogue ---------------------------------------------------------------------

    def add_movie(
        self,
        title: str,
        year: int | None = None,
        *,
        trakt: int | None = None,
        slug: str | None = None,
        imdb: str | None = None,
        tmdb: int | None = None,
        aliases: Iterable[tuple[str, str]] = (),
    ) -> Movie:
        """Missing trakt id and slug are made up; the returned movie carries them."""
        with self._lock:
            ids = Ids(trakt=trakt, slug=slug, imdb=imdb, tmdb=tmdb)
            return self._catalogue.add_movie(title, year, ids, aliases)

    def add_show(
        self,
        title: str,
        year: int | None = None,
        *,
        trakt: int | None = None,
        slug: str | None = None,
        imdb: str | None = None,
        tmdb: int | None = None,
        tvdb: int | None = None,
        episodes: Iterable[Episode] = (),
        aliases: Iterable[tuple[str, str]] = (),
    ) -> Show:
        """Episodes without trakt ids or titles get made-up ones; `show.episode(s, n)` finds one."""
        with self._lock:
            ids = Ids(trakt=trakt, slug=slug, imdb=imdb, tmdb=tmdb, tvdb=tvdb)
            return self._catalogue.add_show(title, year, ids, episodes, aliases)

    def load_catalogue(self, path: Path) -> None:
        """Adds a JSON file: {"movies": [{title, year, ids}], "shows": [{..., episodes: [
        {season, number, ids, number_abs, title}]}]}."""
        with self._lock:
            self._catalogue.load_file(path)

    # --- tokens and device codes -----------------------------------------------------------

    def add_user(self, name: str) -> None:
        """Another Trakt user (the household); the first, `MAIN_USER`, always exists."""
        with self._lock:
            if name not in self._users:
                self._users[name] = TraktState(self.config, self._users_clock, self._catalogue)

    def _user(self, name: str | None) -> TraktState:
        return self._state if name is None else self._users[name]

    def _user_of(self, authorization: str | None) -> str:
        """The user whose token `authorization` carries (an expired one too), else the main."""
        token = (authorization or "").partition(" ")[2].strip()
        for name, state in self._users.items():
            if token and state.owns(token):
                return name
        return MAIN_USER

    def issue_token(self, user: str | None = None) -> TokenPair:
        """A valid token pair, as if the user had logged in (skips the device flow)."""
        with self._lock:
            return self._user(user).issue_token()

    def expire_access_tokens(self, user: str | None = None) -> None:
        with self._lock:
            self._user(user).expire_access_tokens()

    def approve(self, user_code: str | None = None, user: str | None = None) -> str:
        """`user` (None: the main one) approves `user_code` (None: the newest pending one), so
        the token the device then gets is that user's; returns the code."""
        with self._changed:
            grantor = None if user is None else self._users[user]
            code = self._state.set_device_status(user_code, DeviceStatus.APPROVED, grantor)
            self._changed.notify_all()
            return code

    def deny(self, user_code: str | None = None) -> str:
        with self._changed:
            code = self._state.set_device_status(user_code, DeviceStatus.DENIED)
            self._changed.notify_all()
            return code

    def expire_device_codes(self) -> None:
        with self._lock:
            self._state.expire_device_codes()

    def device_codes(self) -> tuple[DeviceCode, ...]:
        with self._lock:
            return self._state.device_codes()

    # --- state -----------------------------------------------------------------------------

    def history(self, user: str | None = None) -> tuple[HistoryEntry, ...]:
        """In the order entries were added (GET /sync/history sorts newest first)."""
        with self._lock:
            return self._user(user).history()

    def playback(self, user: str | None = None) -> tuple[PlaybackEntry, ...]:
        with self._lock:
            return self._user(user).playback()

    def watching(self, user: str | None = None) -> Watching | None:
        with self._lock:
            return self._user(user).watching()

    def add_history(
        self,
        item: Item,
        watched_at: datetime | None = None,
        action: HistoryAction = HistoryAction.WATCH,
    ) -> HistoryEntry:
        """Seeds a play, e.g. one an earlier, lost-looking send did deliver."""
        with self._changed:
            entry = self._state.add_history_entry(item, watched_at, action)
            self._changed.notify_all()
            return entry

    # --- faults ----------------------------------------------------------------------------

    def _arm(self, fault: Fault) -> None:
        with self._lock:
            self._faults.arm(fault)

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        *,
        path_prefix: str | None = None,
        method: str | None = None,
        retry_after: float | None = None,
        html: bool = False,
        user: str | None = None,
    ) -> None:
        """The next `n` matching requests get `status` and change nothing.

        With `retry_after` a Retry-After header is sent (and X-Ratelimit on a 429);
        `html=True` answers an edge-style HTML page with no rate headers at all; `user`
        limits it to requests with that user's token.
        """
        self._arm(
            Fault(FaultKind.STATUS, n, path_prefix, method, status, retry_after, html, user=user)
        )

    def delay_next(
        self, n: int, seconds: float, *, path_prefix: str | None = None, method: str | None = None
    ) -> None:
        """The next `n` matching requests wait `seconds`, then are handled normally."""
        self._arm(Fault(FaultKind.DELAY, n, path_prefix, method, seconds=seconds))

    def drop_next(
        self, n: int = 1, *, path_prefix: str | None = None, method: str | None = None
    ) -> None:
        """The next `n` matching requests are read, then the connection closes unanswered."""
        self._arm(Fault(FaultKind.DROP, n, path_prefix, method))

    def drop_after_processing_next(
        self, n: int = 1, *, path_prefix: str | None = None, method: str | None = None
    ) -> None:
        """The next `n` matching requests take effect, but their answer is lost."""
        self._arm(Fault(FaultKind.DROP_AFTER, n, path_prefix, method))

    def fail_after_processing_next(
        self,
        n: int = 1,
        status: int = 524,
        *,
        path_prefix: str | None = None,
        method: str | None = None,
        html: bool = True,
    ) -> None:
        """The next `n` matching requests take effect, but are answered `status` (an edge page
        by default): Trakt took them and the client is told it failed."""
        self._arm(Fault(FaultKind.STATUS_AFTER, n, path_prefix, method, status, html=html))

    def truncate_after_processing_next(
        self, n: int = 1, *, path_prefix: str | None = None, method: str | None = None
    ) -> None:
        """The next `n` matching requests take effect, but their answer's body is cut short."""
        self._arm(Fault(FaultKind.TRUNCATE_AFTER, n, path_prefix, method))

    def set_outage(self, on: bool, *, status: int | None = None) -> None:
        """While on, every request is dropped unanswered, or answered `status` if given."""
        with self._lock:
            if not on:
                self._faults.outage = None
            elif status is None:
                self._faults.outage = Fault(FaultKind.DROP, 1)
            else:
                self._faults.outage = Fault(FaultKind.STATUS, 1, status=status)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # --- recording -------------------------------------------------------------------------

    def requests(self, path_prefix: str | None = None) -> list[RecordedRequest]:
        """Recorded requests in arrival order."""
        with self._lock:
            records = sorted(self._records, key=lambda r: r.monotonic)
        if path_prefix is None:
            return records
        return [r for r in records if r.path.startswith(path_prefix)]

    def wait_for(
        self,
        predicate: Callable[[RecordedRequest], bool],
        timeout: float = 5.0,
        *,
        count: int = 1,
    ) -> RecordedRequest:
        """Blocks until `count` answered requests satisfy `predicate`; returns the count-th."""
        found: list[RecordedRequest] = []

        def enough() -> bool:
            found[:] = [r for r in self.requests() if predicate(r)]
            return len(found) >= count

        self._wait(enough, timeout, f"{count} matching request(s)")
        return found[count - 1]

    def wait_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Blocks until `condition()` (e.g. on `history()`) holds; rechecked on every change."""
        self._wait(condition, timeout, "the condition")

    async def wait_for_async(
        self,
        predicate: Callable[[RecordedRequest], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - the thread doing the wait has this deadline
        *,
        count: int = 1,
    ) -> RecordedRequest:
        """`wait_for` for async tests: the wait runs off the test's loop."""
        return await asyncio.to_thread(self.wait_for, predicate, timeout, count=count)

    async def wait_until_async(
        self,
        condition: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - as in wait_for_async
    ) -> None:
        await asyncio.to_thread(self.wait_until, condition, timeout)

    def _wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"fake Trakt: waited {timeout:g} s for {what}; {self._summary()}"
                    )
                self._changed.wait(remaining)

    def _summary(self, last: int = 30) -> str:
        records = self.requests()
        if not records:
            return "it received no request"
        lines = [
            f"{r.method} {r.path} -> {r.status if r.status is not None else 'dropped'}"
            + (f" [{r.fault}]" if r.fault else "")
            for r in records[-last:]
        ]
        more = f" (last {last})" if len(records) > last else ""
        return f"it received {len(records)} request(s){more}:\n  " + "\n  ".join(lines)

    # --- HTTP ------------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        s = self._state

        def route(fn: Callable[[web.Request], Reply]) -> Handler:
            async def handler(request: web.Request) -> web.StreamResponse:
                with self._changed:
                    reply = fn(request)
                    self._changed.notify_all()
                return _response(reply)

            return handler

        def body(request: web.Request) -> dict[str, Any]:
            return request[_BODY]

        def query(request: web.Request) -> dict[str, str]:
            return dict(request.query)

        def user(request: web.Request) -> TraktState:
            return self._users[request[_USER]]

        def history(request: web.Request) -> Reply:
            info = request.match_info
            return user(request).get_history(info.get("kind"), info.get("id"), query(request))

        app.router.add_post("/oauth/device/code", route(lambda r: s.new_device_code(body(r))))
        app.router.add_post("/oauth/device/token", route(lambda r: s.poll_device(body(r))))

        def by_token(request: web.Request, key: str) -> TraktState:
            token = body(request).get(key)
            return self._users[self._user_of(f"Bearer {token}" if isinstance(token, str) else "")]

        app.router.add_post(
            "/oauth/token", route(lambda r: by_token(r, "refresh_token").oauth_token(body(r)))
        )
        app.router.add_post("/oauth/revoke", route(lambda r: by_token(r, "token").revoke(body(r))))
        app.router.add_post(
            "/scrobble/start", route(lambda r: user(r).scrobble(ScrobbleVerb.START, body(r)))
        )
        app.router.add_post(
            "/scrobble/stop", route(lambda r: user(r).scrobble(ScrobbleVerb.STOP, body(r)))
        )
        app.router.add_post("/sync/history", route(lambda r: user(r).sync_history(body(r))))
        app.router.add_get("/sync/history", route(history))
        app.router.add_get("/sync/history/{kind}", route(history))
        app.router.add_get("/sync/history/{kind}/{id}", route(history))
        app.router.add_get("/sync/playback", route(lambda r: user(r).get_playback(None)))
        app.router.add_get(
            "/sync/playback/{kind}",
            route(lambda r: user(r).get_playback(r.match_info["kind"])),
        )
        app.router.add_get(
            "/search/{type}", route(lambda r: s.search_text(r.match_info["type"], query(r)))
        )
        app.router.add_get(
            "/search/{id_type}/{id}",
            route(lambda r: s.search_id(r.match_info["id_type"], r.match_info["id"], query(r))),
        )
        for kind in ("movies", "shows"):
            app.router.add_get(
                f"/{kind}/{{id}}/aliases",
                route(partial(_aliases, s, kind)),
            )
        app.router.add_get(
            "/shows/{id}/seasons",
            route(lambda r: s.seasons(r.match_info["id"], query(r))),
        )
        app.router.add_get(
            "/shows/{id}/seasons/{season}/episodes/{episode}",
            route(
                lambda r: s.episode_summary(
                    r.match_info["id"], r.match_info["season"], r.match_info["episode"]
                )
            ),
        )
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        arrived_mono, arrived_wall = time.monotonic(), time.time()
        raw = await request.read()
        status: int | None = None
        with self._lock:
            who = self._user_of(request.headers.get("authorization"))
            request[_USER] = who
            fault = self._faults.take(request.method, request.path, who)
        try:
            if fault is not None and fault.kind is FaultKind.DELAY:
                await asyncio.sleep(fault.seconds)
            if fault is not None and fault.kind is FaultKind.DROP:
                return _drop(request)
            response: web.StreamResponse
            if fault is not None and fault.kind is FaultKind.STATUS:
                response = self._canned(fault, request.method)
            else:
                response = await self._checked(request, handler, raw)
            if fault is not None and fault.kind is FaultKind.DROP_AFTER:
                return _drop(request)
            if fault is not None and fault.kind is FaultKind.STATUS_AFTER:
                response = self._canned(fault, request.method)
            if fault is not None and fault.kind is FaultKind.TRUNCATE_AFTER:
                body = response.body if isinstance(response, web.Response) else None
                whole = bytes(body) if isinstance(body, bytes | bytearray) else b""
                cut = whole[: max(1, len(whole) // 2)] if whole else b"{"
                response = web.Response(
                    status=response.status, body=cut, content_type="application/json"
                )
            status = response.status
            return response
        finally:
            self._record(request, raw, status, arrived_mono, arrived_wall, fault)

    def _canned(self, fault: Fault, method: str) -> web.Response:
        """The answer of a STATUS fault: an edge HTML page, or JSON with rate headers."""
        if fault.html:
            page = f"<html><body><h1>Error {fault.status}</h1></body></html>"
            return web.Response(status=fault.status, text=page, content_type="text/html")
        if fault.status == 429 and fault.retry_after is not None:
            with self._lock:
                now = self._state.now()
            if method in WRITE_METHODS:
                limited = rate_limited("AUTHED_API_POST_LIMIT", 1, 1, fault.retry_after, now)
            else:
                cfg = self.config
                name = "AUTHED_API_GET_LIMIT"
                limited = rate_limited(name, cfg.get_period, cfg.get_limit, fault.retry_after, now)
            return _response(limited)
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(max(0, math.ceil(fault.retry_after)))
        return _response(Reply(fault.status, {"error": f"injected {fault.status}"}, headers))

    async def _checked(
        self, request: web.Request, handler: Handler, raw: bytes
    ) -> web.StreamResponse:
        """The blueprint's header, body, OAuth and rate checks, then the endpoint itself."""
        headers, method, path = request.headers, request.method, request.path
        if headers.get("trakt-api-key") != self.config.client_id:
            return _response(Reply(403, {"error": "invalid API key or unapproved app"}))
        if headers.get("trakt-api-version") != "2":
            return _response(Reply(400, {"error": "trakt-api-version: 2 is required"}))
        if not headers.get("user-agent"):
            return _response(Reply(400, {"error": "a User-Agent is required"}))
        if method in WRITE_METHODS:
            if request.content_type != "application/json":
                return _response(Reply(412, {"error": "use application/json content type"}))
            body = _parse_json(raw)
            if not isinstance(body, dict):
                return _response(Reply(400, {"error": "the body must be a JSON object"}))
            request[_BODY] = body
        if not path.startswith("/oauth/"):
            authorization = headers.get("authorization")
            needs_auth = method in WRITE_METHODS or path.startswith("/sync/")
            with self._lock:
                state = self._users[request[_USER]]
                authed = state.authenticate(authorization)
                if not authed and (needs_auth or authorization is not None):
                    return _response(Reply(401, {"error": "invalid_token"}))
                limited = (
                    state.check_post_rate()
                    if method in WRITE_METHODS
                    else state.check_get_rate(authed)
                )
            if limited is not None:
                return _response(limited)
        try:
            return await handler(request)
        except web.HTTPException as exc:  # no route (404) or wrong method (405)
            return _response(Reply(exc.status, {"error": exc.reason}))
        except Exception:
            log.exception("fake trakt: %s %s failed", method, path)
            return _response(Reply(500, {"error": "the fake failed; see its log"}))

    def _record(
        self,
        request: web.Request,
        raw: bytes,
        status: int | None,
        mono: float,
        wall: float,
        fault: Fault | None,
    ) -> None:
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            json=_parse_json(raw),
            status=status,
            monotonic=mono,
            wall=wall,
            fault=None if fault is None else fault.kind,
            user=request.get(_USER) or MAIN_USER,
        )
        log.debug("fake trakt: %s %s -> %s", record.method, record.path, status)
        with self._changed:
            self._records.append(record)
            self._changed.notify_all()


def _drop(request: web.Request) -> web.StreamResponse:
    """Closes the connection unanswered; aiohttp then fails quietly to write this response."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=599)


def _aliases(state: TraktState, kind: str, request: web.Request) -> Reply:
    return state.aliases(kind, request.match_info["id"])
