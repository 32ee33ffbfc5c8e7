"""Wiring and lifecycle: builds every part, runs them on one loop, tears them down in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime

import sdnotify
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from trakt_scrobbled import __version__
from trakt_scrobbled.clock import Clock, SystemClock
from trakt_scrobbled.config import Config, OverrideType
from trakt_scrobbled.events import MediaType
from trakt_scrobbled.identify import Identifier, Override
from trakt_scrobbled.outbox import Outbox
from trakt_scrobbled.paths import Paths, ensure_state_dir
from trakt_scrobbled.players import Player
from trakt_scrobbled.scrobbler import Scrobbler
from trakt_scrobbled.sender import Sender
from trakt_scrobbled.session import Policy
from trakt_scrobbled.store import open_db
from trakt_scrobbled.trakt.auth import Auth, AuthState, TokenStore
from trakt_scrobbled.trakt.client import TraktClient
from trakt_scrobbled.trakt.device import DeviceCode, login_until_done
from trakt_scrobbled.trakt.ratelimit import PostRateLimiter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Daemon:
    """The parts of a running daemon that `status` and tests look at."""

    config: Config
    outbox: Outbox
    sender: Sender
    scrobbler: Scrobbler
    auth: Auth
    players: tuple[Player, ...]


def policy_of(config: Config) -> Policy:
    return Policy(
        watched_threshold=float(config.scrobble.watched_threshold),
        seek_debounce=float(config.scrobble.seek_debounce),
    )


def overrides_of(config: Config) -> tuple[Override, ...]:
    return tuple(
        Override(
            o.pattern,
            MediaType.MOVIE if o.type is OverrideType.MOVIE else MediaType.EPISODE,
            o.ids,
        )
        for o in config.overrides
    )


def build_players(config: Config, clock: Clock) -> tuple[Player, ...]:
    players: list[Player] = []
    if config.mpv.enabled and config.mpv.sockets:
        from trakt_scrobbled.players.mpv import MpvPlayer

        players.append(MpvPlayer(config.mpv.sockets, clock=clock))
    elif config.mpv.enabled:
        log.info("mpv: no IPC sockets configured ([mpv] sockets); not watching mpv")
    return tuple(players)


async def run(
    config: Config,
    paths: Paths,
    *,
    clock: Clock | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the daemon until SIGTERM/SIGINT (or `stop` is set)."""
    clock = clock or SystemClock()
    stop = stop or asyncio.Event()
    notifier = sdnotify.SystemdNotifier()
    loop = asyncio.get_running_loop()
    log.info("trakt-scrobbled %s starting", __version__)
    async with AsyncExitStack() as stack:
        ensure_state_dir(paths)
        conn = open_db(paths.db_file)
        stack.callback(conn.close)
        outbox = Outbox(conn, clock)
        limiter = PostRateLimiter(clock)
        auth = Auth(
            TokenStore(paths.token_file),
            clock,
            client_id=config.trakt.client_id,
            client_secret=config.trakt.client_secret,
        )
        client = TraktClient(
            config.trakt.api_url, config.trakt.client_id, limiter, token=auth.access_token
        )
        stack.push_async_callback(client.aclose)
        sender = Sender(outbox, client, auth, clock)
        if not config.trakt.client_id:
            sender.park_client(
                "no Trakt client id: set [trakt] client_id in the config or TRAKT_CLIENT_ID"
            )
        identifier = Identifier(
            client,
            conn,
            clock,
            overrides=overrides_of(config),
            min_duration=float(config.scrobble.min_duration),
        )
        scrobbler = Scrobbler(outbox, identifier, clock, policy_of(config))
        stack.push_async_callback(scrobbler.aclose)
        players = build_players(config, clock)
        if auth.state is AuthState.LOGIN_NEEDED:
            log.warning("not logged in to Trakt: run `trakt-scrobbled login`; scrobbles are queued")
        counts = outbox.counts()
        if counts.pending or counts.dead:
            log.info("outbox: %d queued, %d failed", counts.pending, counts.dead)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
            stack.callback(loop.remove_signal_handler, sig)

        def announce(code: DeviceCode) -> None:
            log.warning(
                "Trakt login needed: open %s and enter the code %s (or open %s)",
                code.verification_url,
                code.user_code,
                code.activate_url,
            )
            notifier.notify(f"STATUS=login needed: enter {code.user_code} at {code.activate_url}")

        scheduler = AsyncIOScheduler(event_loop=loop)
        scheduler.start()
        stack.callback(scheduler.shutdown, wait=False)
        refresher = TokenRefresher(scheduler, client, auth, clock)

        tasks: list[asyncio.Task[None]] = [
            loop.create_task(refresher.follow(), name="refresh"),
            loop.create_task(sender.run(), name="sender"),
            loop.create_task(_keep_logged_in(config, client, auth, clock, announce), name="login"),
            *(loop.create_task(p.run(scrobbler.handle), name=p.name) for p in players),
        ]
        stack.push_async_callback(_cancel_all, tasks)
        if not players:
            log.info("no player enabled: idle (enable [mpv], [kodi] or [plex] in the config)")
        log.info("ready: watching %s", ", ".join(p.name for p in players) or "no players")
        notifier.notify("READY=1")
        notifier.notify(f"STATUS=watching {', '.join(p.name for p in players) or 'no players'}")

        stopper = loop.create_task(stop.wait(), name="stop")
        done, _ = await asyncio.wait({stopper, *tasks}, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopper and not task.cancelled() and task.exception() is not None:
                stopper.cancel()
                raise task.exception()  # type: ignore[misc]
        log.info("stopping")
        notifier.notify("STOPPING=1")
    log.info("stopped")


async def _keep_logged_in(
    config: Config,
    client: TraktClient,
    auth: Auth,
    clock: Clock,
    announce: Callable[[DeviceCode], None],
    *,
    refresh_margin: float = 86400.0,
) -> None:
    """Log in when there is no login; refresh the token before it expires."""
    while True:
        generation = auth.generation
        if auth.state is AuthState.LOGIN_NEEDED:
            if not (config.trakt.client_id and config.trakt.client_secret):
                log.error(
                    "cannot log in: set [trakt] client_id and client_secret "
                    "(or TRAKT_CLIENT_ID / TRAKT_CLIENT_SECRET)"
                )
                await auth.wait_changed(generation)
                continue
            token = await login_until_done(
                client,
                clock,
                client_id=config.trakt.client_id,
                client_secret=config.trakt.client_secret,
                announce=announce,
            )
            auth.set_token(token)
            continue
        await auth.wait_changed(generation)


class TokenRefresher:
    """Refreshes the token ahead of its expiry, on the scheduler; re-arms after each change."""

    def __init__(
        self,
        scheduler: AsyncIOScheduler,
        client: TraktClient,
        auth: Auth,
        clock: Clock,
        *,
        margin: float = 86400.0,
        retry: float = 300.0,
    ) -> None:
        self._scheduler = scheduler
        self._client = client
        self._auth = auth
        self._clock = clock
        self._margin = margin
        self._retry = retry

    def arm(self) -> None:
        expires_at = self._auth.expires_at
        if expires_at is None:
            if self._scheduler.get_job("refresh") is not None:
                self._scheduler.remove_job("refresh")
            return
        now = self._clock.time()
        left = expires_at - now
        # A day ahead, or halfway through a short-lived token.
        when = now + max(0.0, left - min(self._margin, left / 2))
        self._schedule(when)

    def _schedule(self, when: float) -> None:
        self._scheduler.add_job(
            self._refresh,
            "date",
            run_date=datetime.fromtimestamp(when, tz=UTC),
            id="refresh",
            replace_existing=True,
            misfire_grace_time=None,
        )

    async def _refresh(self) -> None:
        if await self._auth.refresh(self._client, rejected=None):
            self.arm()
        elif self._auth.state is AuthState.LOGGED_IN:
            self._schedule(self._clock.time() + self._retry)

    async def follow(self) -> None:
        """Re-arm whenever the login changes (new login, refresh after a 401, logout)."""
        while True:
            generation = self._auth.generation
            self.arm()
            await self._auth.wait_changed(generation)


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    for task in reversed(tasks):
        task.cancel()
    for task in reversed(tasks):
        with contextlib.suppress(asyncio.CancelledError):
            await task
