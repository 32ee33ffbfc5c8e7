"""Wiring and lifecycle: builds every part, runs them on one loop, tears them down in reverse,
and applies config edits live.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

from trakt_scrobbled import __version__, logs, router
from trakt_scrobbled.alerts import Alert, AlertKind, Alerts
from trakt_scrobbled.changes import describe_changes
from trakt_scrobbled.clock import Clock, SystemClock
from trakt_scrobbled.config import (
    IMPLICIT_ACCOUNT,
    Config,
    ConfigError,
    MediaServerMode,
    OverrideType,
    PlexMode,
    ServerConfig,
    diff_sections,
    load_config,
)
from trakt_scrobbled.control import CommandFailed, ControlError, ControlServer, control_path
from trakt_scrobbled.events import MediaType
from trakt_scrobbled.filewatch import FileWatcher
from trakt_scrobbled.history import iso
from trakt_scrobbled.household import adopt_implicit
from trakt_scrobbled.identify import Identifier, Override
from trakt_scrobbled.lanes import AccountLane
from trakt_scrobbled.lock import single_instance
from trakt_scrobbled.notify import Notifier
from trakt_scrobbled.outbox import Outbox, accounts_with_rows
from trakt_scrobbled.parse_worker import WorkerParser
from trakt_scrobbled.paths import Paths, ensure_state_dir
from trakt_scrobbled.players import Player
from trakt_scrobbled.playstate import PlayStore
from trakt_scrobbled.redact import mask_urls
from trakt_scrobbled.scrobbler import Scrobbler
from trakt_scrobbled.sender import Sender, SenderState
from trakt_scrobbled.server import LocalServer, ServerError
from trakt_scrobbled.session import Phase, Policy
from trakt_scrobbled.signals import EarlySignals
from trakt_scrobbled.status_view import queue_row_json
from trakt_scrobbled.store import open_db
from trakt_scrobbled.supervisor import Supervisor
from trakt_scrobbled.trakt.auth import Auth, AuthState, TokenStore
from trakt_scrobbled.trakt.client import TraktClient
from trakt_scrobbled.trakt.device import DeviceCode, login_until_done
from trakt_scrobbled.trakt.ratelimit import PostRateLimiter
from trakt_scrobbled.trakt.refresh import TokenRefresher

log = logging.getLogger(__name__)

PLAYER_SECTIONS = ("mpv", "kodi", "plex", "jellyfin", "emby", "mpris")

BIND_RETRY = (1.0, 30.0)
"""Seconds between tries to listen on a port in use: first, then doubling up to the second."""


def policy_of(config: Config) -> Policy:
    # [scrobble] seek_debounce is read but no longer used: a seek is a start at once, and
    # the outbox coalesces a burst (an unsent start is replaced by a newer one).
    return Policy(watched_threshold=float(config.scrobble.watched_threshold))


def overrides_of(config: Config) -> tuple[Override, ...]:
    return tuple(
        Override(
            o.pattern,
            MediaType.MOVIE if o.type is OverrideType.MOVIE else MediaType.EPISODE,
            o.ids,
        )
        for o in config.overrides
    )


def wants_listener(config: Config) -> bool:
    """Whether an enabled player takes webhooks (Plex, Jellyfin or Emby in webhook mode); else
    no port is opened."""
    if config.plex.enabled and config.plex.mode is PlexMode.WEBHOOK:
        return True
    return any(
        media.enabled and media.mode is MediaServerMode.WEBHOOK
        for media in (config.jellyfin, config.emby)
    )


def build_player(
    section: str,
    config: Config,
    clock: Clock,
    paths: Paths | None = None,
    env: Mapping[str, str] | None = None,
) -> Player | None:
    """The adapter for one `[section]` of the config, or None when it is off."""
    if section == "mpv" and config.mpv.enabled:
        if not config.mpv.sockets:
            log.info("mpv: no IPC sockets configured ([mpv] sockets); not watching mpv")
            return None
        from trakt_scrobbled.players.mpv import MpvPlayer

        return MpvPlayer(config.mpv.sockets, clock=clock)
    if section == "kodi" and config.kodi.enabled:
        from trakt_scrobbled.players.kodi import KodiPlayer

        return KodiPlayer(
            config.kodi.host, config.kodi.port, clock=clock, include_pvr=config.kodi.include_pvr
        )
    if section == "plex" and config.plex.enabled and config.plex.mode is PlexMode.LIVE:
        from trakt_scrobbled.players.plex_live import PlexLivePlayer
        from trakt_scrobbled.plextv import PlexLoginStore, live_credentials

        plex = config.plex
        store = PlexLoginStore(paths.plex_login_file) if paths is not None else None
        return PlexLivePlayer(lambda: live_credentials(plex, store), plex.accounts, clock=clock)
    if section == "plex" and config.plex.enabled:
        from trakt_scrobbled.players.plex import PlexPlayer

        return PlexPlayer(
            config.plex.accounts,
            secret=config.plex.secret,
            clock=clock,
            server_url=config.plex.url,
            server_token=config.plex.token,
        )
    if section in ("jellyfin", "emby"):
        media_server = config.jellyfin if section == "jellyfin" else config.emby
        if media_server.enabled:
            from trakt_scrobbled.players.jellyfin import build_jellyfin

            return build_jellyfin(section, media_server, clock=clock)
    if section == "mpris" and config.mpris.enabled:
        from trakt_scrobbled.players.mpris import MprisPlayer, session_bus_address

        return MprisPlayer(
            bus_address=session_bus_address(os.environ if env is None else env),
            players=config.mpris.players,
            ignore=config.mpris.ignore,
            # An mpv the mpv adapter follows is left to it: no play reported twice.
            mpv_sockets=config.mpv.sockets if config.mpv.enabled else (),
            clock=clock,
        )
    return None


class App:
    """The running daemon: every long-lived part, and what `status` reports about them."""

    def __init__(
        self, config: Config, paths: Paths, *, clock: Clock, env: Mapping[str, str]
    ) -> None:
        self.config = config
        self.paths = paths
        self.clock = clock
        self.env = env
        self.notifier = Notifier(env)
        self._reload_requested = asyncio.Event()
        self._config_changed = asyncio.Event()
        self._retired: list[TraktClient] = []
        self._supervisor: Supervisor | None = None
        self._login_code: DeviceCode | None = None
        self._login_reason = "Trakt login needed"
        self.config_problems: tuple[str, ...] = ()
        self.server_error: str | None = None
        self.server: LocalServer | None = None
        self._server_config: ServerConfig | None = None
        self.started_at = 0.0
        self._started_mono = 0.0
        self._binding: asyncio.Task[None] | None = None
        self._config_gone = False

    async def run(self, stop: asyncio.Event, *, early: EarlySignals | None = None) -> None:
        """`early` holds a SIGHUP that came before the loop could take it."""
        loop = asyncio.get_running_loop()
        async with AsyncExitStack() as stack:
            # First of all: a SIGHUP (or SIGTERM) during start-up must not kill us.
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
                stack.callback(loop.remove_signal_handler, sig)
            loop.add_signal_handler(signal.SIGHUP, self.request_reload)
            stack.callback(loop.remove_signal_handler, signal.SIGHUP)
            if early is not None and early.hup:
                self.request_reload()
            log.info("trakt-scrobbled %s starting", __version__)
            ensure_state_dir(self.paths)
            stack.enter_context(single_instance(self.paths.state_dir / "daemon.lock"))
            self.started_at = self.clock.time()
            self._started_mono = self.clock.monotonic()
            conn = open_db(self.paths.db_file)
            stack.callback(conn.close)
            self.conn = conn
            self.outbox = Outbox(conn, self.clock)
            stack.callback(self.outbox.lose_held)  # before the database closes
            self.limiter = PostRateLimiter(self.clock)
            self.auth = Auth(
                TokenStore(self.paths.token_file),
                self.clock,
                client_id=self.config.trakt.client_id,
                client_secret=self.config.trakt.client_secret,
            )
            self.client = self._new_client(self.config)
            stack.push_async_callback(self._close_client)
            self.alerts = Alerts(self.config.notify, self.env)
            stack.push_async_callback(self.alerts.aclose)
            self.parser = WorkerParser()
            stack.push_async_callback(self.parser.aclose)
            self.sender = Sender(
                self.outbox,
                self.client,
                self.auth,
                self.clock,
                history_after=self.config.scrobble.history_after,
                limiter=self.limiter,
                on_alert=self.alerts,
            )
            self.identifier = self._new_identifier(self.config)
            # The household: one lane per [accounts.NAME]; none without [accounts].
            self.lanes: dict[str, AccountLane] = {}
            stack.push_async_callback(self._close_lanes)
            await self._sync_lanes(self.config)
            self.scrobbler = Scrobbler(
                self.outbox,
                self.identifier,
                self.clock,
                policy_of(self.config),
                plays=PlayStore(conn),
                rewatch_window=self.config.scrobble.rewatch_window,
                lane=self._lane_for,
            )
            stack.push_async_callback(self.scrobbler.aclose)
            # Any answer from Trakt is news that it is back: plays waiting to be identified
            # after an outage try again at once (the sender's backoff ends the same way).
            self.client.on_success(self.scrobbler.trakt_is_back)
            # A player that outlived the daemon reports its play again within seconds: it goes
            # on as the same play instead of being closed and started anew.
            self.scrobbler.recover(hold=10.0)
            self._check_client_id()

            refresher = TokenRefresher(lambda: self.client, self.auth, self.clock)

            tasks: list[asyncio.Task[None]] = [
                loop.create_task(self.sender.run(), name="sender"),
                loop.create_task(refresher.follow(), name="refresh"),
                loop.create_task(self._keep_logged_in(), name="login"),
                loop.create_task(self.outbox.keep_trying(), name="outbox"),
            ]
            stack.push_async_callback(_cancel_all, tasks)
            await self._sync_server(self.config)
            stack.push_async_callback(self._stop_server)
            self.control = ControlServer(control_path(self.env, self.paths), self.on_command)
            try:
                await self.control.start()
            except ControlError as err:
                log.error("%s: `status`, `queue` and `reload` cannot reach this daemon", err)
            else:
                stack.push_async_callback(self.control.stop)
            self._supervisor = Supervisor(
                self.clock, self.scrobbler.handle, on_change=self.update_status
            )
            stack.push_async_callback(self._supervisor.aclose)
            for section in PLAYER_SECTIONS:
                self._start_player(section)

            # A first run on a fresh account has no ~/.config yet: make the (private) folder the
            # config will live in, so a `config init` or an editor's first save is noticed.
            with contextlib.suppress(OSError):
                self.paths.config_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            watcher = FileWatcher(self.paths.config_file, self.request_reload, loop)
            if watcher.start():
                stack.callback(watcher.stop)
            else:
                log.info("not watching %s: no folder above it exists", self.paths.config_file)

            if self.auth.state is AuthState.LOGIN_NEEDED and not self._household_mode():
                # (Each account's lane says so for itself.)
                log.warning("not logged in to Trakt; scrobbles are queued until you log in")
            counts = self.outbox.counts()
            if counts.pending or counts.dead:
                log.info("outbox: %d queued, %d failed", counts.pending, counts.dead)
            if self.config.source is None:
                log.warning(
                    "no config file at %s: running on defaults; "
                    "write a commented one with `trakt-scrobbled config init`",
                    self.paths.config_file,
                )
            elif not self._players():
                log.info(
                    "no player enabled: idle (enable [mpv], [kodi], [plex], [jellyfin] or [emby])"
                )
            log.info("ready: watching %s", ", ".join(self._players()) or "no players")
            self.notifier.ready()
            self.update_status()
            self.outbox.on_change(self.update_status)  # a full disk shows at once
            if self.notifier.enabled:
                tasks.append(loop.create_task(self._heartbeat(), name="heartbeat"))

            stopper = loop.create_task(stop.wait(), name="stop")
            reloader = loop.create_task(self._reloads(), name="reload")
            tasks.append(reloader)
            done, _ = await asyncio.wait({stopper, *tasks}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            for task in done:
                if task is not stopper:
                    # Every part runs until cancelled: one that ended is a bug; exit non-zero
                    # so that systemd restarts us (queued scrobbles are safe on disk).
                    failure = None if task.cancelled() else task.exception()
                    raise RuntimeError(f"{task.get_name()} stopped unexpectedly") from failure
            log.info("stopping")
            self.notifier.stopping()
        log.info("stopped")

    # --- parts -------------------------------------------------------------------------

    def _new_client(self, config: Config) -> TraktClient:
        return TraktClient(
            config.trakt.api_url,
            config.trakt.client_id,
            self.limiter,
            token=self.auth.access_token,
        )

    async def _close_client(self) -> None:
        for client in (*self._retired, self.client):
            await client.aclose()

    def _new_identifier(
        self, config: Config, overrides: tuple[Override, ...] | None = None
    ) -> Identifier:
        return Identifier(
            self.client,
            self.conn,
            self.clock,
            overrides=overrides_of(config) if overrides is None else overrides,
            min_duration=float(config.scrobble.min_duration),
            parser=self.parser,
        )

    def _check_client_id(self) -> None:
        if not self.config.trakt.client_id:
            self.sender.park_client(
                "no Trakt client id: set [trakt] client_id in the config or TRAKT_CLIENT_ID"
            )

    async def _sync_server(self, config: Config) -> None:
        """The webhook listener runs only while a webhook player is enabled."""
        if not wants_listener(config):
            await self._stop_server()
            return
        if self.server is not None and self._server_config == config.server:
            return
        await self._stop_server()
        self.server = LocalServer(config.server.host, config.server.port)
        self._server_config = config.server
        try:
            await self.server.start()
            self.server_error = None
        except ServerError as err:
            # mpv and Kodi go on without it; `status` and Plex say what is wrong, and the bind
            # is retried: the port may be freed (an old daemon stopping, a live port edit).
            self.server_error = f"{err}; retrying"
            log.error("%s: Plex webhooks will not work until it is free; retrying", err)
            self._binding = asyncio.get_running_loop().create_task(
                self._bind_until_done(self.server), name="listener-bind"
            )

    async def _bind_until_done(self, server: LocalServer) -> None:
        first, cap = BIND_RETRY
        delay = first
        while True:
            await self.clock.sleep(delay)
            delay = min(delay * 2, cap)
            try:
                await server.start()
            except ServerError as err:
                self.server_error = f"{err}; retrying"
                log.debug("%s; retrying in %.0f s", err, delay)
                continue
            self.server_error = None
            log.info("listening at last on %s:%s", server.host, server.port)
            self.update_status()
            return

    async def _stop_server(self) -> None:
        binding, self._binding = self._binding, None
        if binding is not None:
            binding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await binding
        if self.server is not None:
            await self.server.stop()
        self.server = None
        self._server_config = None
        self.server_error = None

    def _players(self) -> dict[str, Player]:
        return {} if self._supervisor is None else self._supervisor.players

    def _start_player(self, section: str) -> None:
        player = build_player(section, self.config, self.clock, self.paths, self.env)
        if player is None or self._supervisor is None:
            return
        self._supervisor.start(section, player)
        self._mount(player)

    def _mount(self, player: Player) -> None:
        """Serve the webhook routes a player offers on the listener."""
        if self.server is None:
            return  # no listener (no webhook player enabled); mounted when one starts
        for route in player.routes():
            try:
                self.server.set_route(route.name, route.secret, route.handler)
            except ValueError:
                log.error("%s: the listener has no route /%s/", player.name, route.name)

    async def _stop_player(self, section: str) -> None:
        player = None if self._supervisor is None else await self._supervisor.stop(section)
        if player is None:
            return
        for route in player.routes():
            if self.server is not None:
                with contextlib.suppress(ValueError):
                    self.server.set_route(route.name, "", None)

    # --- the household -----------------------------------------------------------------

    def _lane_for(
        self, source: str, user: str | None, user_id: str | None
    ) -> tuple[Outbox | None, str]:
        """The outbox of the account a play of `source` by `user` belongs to (router.py)."""
        found = router.route(self.config.accounts, source, user, user_id)
        if found.account is None:
            return None, found.reason
        if found.account == IMPLICIT_ACCOUNT:
            return self.outbox, ""
        lane = self.lanes.get(found.account)
        if lane is None:
            return None, f"account {found.account} is not running"
        return lane.outbox, ""

    async def _sync_lanes(self, config: Config) -> None:
        """Lanes for the configured accounts: a new one starts (and its login) at once, a
        removed one stops; its queued rows stay in the database, said in `status`."""
        default = next((a.name for a in config.accounts if a.default), None)
        if default is not None:
            adopted = adopt_implicit(self.conn, self.paths, default)  # quick; the loop's connection
            if adopted.token:
                # The login is the default account's now: the single account must not keep
                # (and refresh) its copy in memory, which would spend the shared refresh token.
                self.auth.drop()
        wanted = {a.name for a in config.accounts}
        for name in [n for n in self.lanes if n not in wanted]:
            lane = self.lanes.pop(name)
            await lane.aclose()
            left = lane.outbox.counts()
            log.warning(
                "account %s removed from the config: its %d queued scrobble(s) are kept "
                "and sent if it comes back",
                name,
                left.pending + left.dead,
            )
        for name in sorted(wanted):
            running = self.lanes.get(name)
            if running is not None:
                running.use_config(config)
                continue
            lane = AccountLane(
                name,
                self.conn,
                self.paths,
                config,
                self.clock,
                on_alert=self.alerts,
                on_change=self.update_status,
            )
            self.lanes[name] = lane
            lane.start()
            log.info("account %s: its lane started", name)

    async def _close_lanes(self) -> None:
        for lane in self.lanes.values():
            await lane.aclose()
        self.lanes.clear()

    def _household_mode(self) -> bool:
        """Named accounts and nothing left of the implicit one: its login is not asked for."""
        if not self.config.accounts:
            return False
        counts = self.outbox.counts()
        return not (counts.pending or counts.dead)

    def _orphaned(self) -> dict[str, int]:
        """Rows of accounts no longer in the config (kept, never dropped)."""
        known = {IMPLICIT_ACCOUNT, *self.lanes}
        return {a: n for a, n in accounts_with_rows(self.conn).items() if a not in known}

    # --- login -------------------------------------------------------------------------

    async def _keep_logged_in(self) -> None:
        """Log in with a device code whenever there is no login, however many times.

        The login restarts when [trakt] is edited (a fixed client secret), and ends when a
        login made with `trakt-scrobbled login` appears in the token file meanwhile.
        """
        while True:
            generation = self.auth.generation
            if self.auth.state is not AuthState.LOGIN_NEEDED:
                await self.auth.wait_changed(generation)
                continue
            if self._household_mode():
                await self._reload_applied()  # each account's lane logs itself in
                continue
            trakt = self.config.trakt
            if not (trakt.client_id and trakt.client_secret):
                if trakt.client_id:  # no client id at all is said once, by the sender
                    log.error("cannot log in: set [trakt] client_secret (or TRAKT_CLIENT_SECRET)")
                await self._reload_applied()
                continue
            login = asyncio.ensure_future(
                login_until_done(
                    self.client,
                    self.clock,
                    client_id=trakt.client_id,
                    client_secret=trakt.client_secret,
                    announce=self._announce,
                )
            )
            edited = asyncio.ensure_future(self._reload_applied())
            elsewhere = asyncio.ensure_future(self._token_saved_elsewhere())
            done: set[asyncio.Future[Any]] = set()
            try:
                done, _ = await asyncio.wait(
                    {login, edited, elsewhere}, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for task in (login, edited, elsewhere):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if login in done:
                self.auth.set_token(login.result())
            elif edited in done:
                log.info("[trakt] changed: starting the login again")
            self._login_code = None
            if self.auth.access_token() is not None:
                self._login_reason = "Trakt login needed"
            self.update_status()

    async def _token_saved_elsewhere(self) -> None:
        """Returns once the token file holds a login (e.g. from `trakt-scrobbled login`)."""
        written = asyncio.Event()
        watcher = FileWatcher(
            self.paths.token_file, written.set, asyncio.get_running_loop(), settle=0.1
        )
        watcher.start()
        try:
            while not self.auth.reload():
                await written.wait()
                written.clear()
        finally:
            watcher.stop()

    def _announce(self, code: DeviceCode) -> None:
        self._login_code = code
        log.warning(
            "%s: open %s and enter the code %s (or open %s); scrobbles stay queued",
            self._login_reason,
            code.verification_url,
            code.user_code,
            code.activate_url,
        )
        self.alerts(
            Alert(
                AlertKind.LOGIN,
                f"{self._login_reason}: code {code.user_code}",
                f"Open {code.verification_url} and enter {code.user_code} "
                f"(or open {code.activate_url}). Scrobbles stay queued meanwhile.",
            )
        )
        self.update_status()

    # --- the control socket ----------------------------------------------------------------

    async def on_command(self, command: str, args: Mapping[str, Any]) -> Any:
        """One command from the control socket (`trakt-scrobbled status`, `queue`, ...)."""
        if command == "status":
            return self.status_json()
        if command == "queue":
            rows = [row for outbox in self._outboxes(args) for row in outbox.rows()]
            return [queue_row_json(row) for row in sorted(rows, key=lambda r: r.id)]
        if command == "retry":
            row_id = _row_id(args, optional=True)
            # A retried row wakes the sender (the outbox tells it): it goes out at once, and a
            # queue Trakt had parked is tried again.
            n = sum(outbox.retry(row_id) for outbox in self._outboxes(args))
            self.sender.unpark()
            for lane in self.lanes.values():
                lane.sender.unpark()
            if n:
                log.info("queue: %d failed row(s) queued again", n)
            return n
        if command == "drop":
            row_id = _row_id(args, optional=False)
            dropped = any(
                outbox.drop(row_id)  # type: ignore[arg-type]
                for outbox in self._outboxes(args)
            )
            if dropped:
                log.info("queue: row %d dropped", row_id)
            return dropped
        if command == "reload":
            applied = await self.reload()
            return {"applied": applied, "problems": list(self.config_problems)}
        if command == "logout":
            account = args.get("account")
            if isinstance(account, str) and account:
                named = self.lanes.get(account)
                if named is None:
                    raise CommandFailed(f"no account {account!r} in the config")
                named.logged_out()
                return None
            self._logged_out()
            return None
        raise CommandFailed(f"unknown command {command!r} (a newer trakt-scrobbled?)")

    def _outboxes(self, args: Mapping[str, Any]) -> list[Outbox]:
        """The lanes a queue command acts on: `account`'s, else every account's (a removed
        account's rows included: they are kept, and can be looked at, retried or dropped)."""
        lanes = {"": self.outbox, **{name: lane.outbox for name, lane in self.lanes.items()}}
        for name in self._orphaned():
            lanes[name] = Outbox(self.conn, self.clock, account=name)
        account = args.get("account")
        if account is None:
            return list(lanes.values())
        if not isinstance(account, str) or account not in lanes:
            raise CommandFailed(f"no account {account!r} (nor rows of one)")
        return [lanes[account]]

    def _logged_out(self) -> None:
        """`trakt-scrobbled logout` deleted the token: stop using it now; the login loop then
        says, once, how to log in again."""
        self._login_reason = "logged out; to log in again"
        self.auth.drop()
        self.update_status()

    # --- status --------------------------------------------------------------------------

    def status_line(self) -> str:
        parts: list[str] = []
        if self.auth.state is AuthState.LOGIN_NEEDED and not self._household_mode():
            code = self._login_code
            if code is not None:
                parts.append(f"login needed: enter {code.user_code} at {code.activate_url}")
            else:
                parts.append("login needed")
        playing = [p for p in self.scrobbler.now_playing() if p.phase is not Phase.IDLE]
        for p in playing[:2]:
            pct = f" {p.progress:.0f}%" if p.progress is not None else ""
            verb = "paused" if p.phase is Phase.PAUSED else "playing"
            parts.append(f"{verb} {p.label}{pct}")
        if not playing:
            parts.append(f"watching {', '.join(self._players()) or 'no players'}")
        for name in self._players():
            failure = self._supervisor.failing(name) if self._supervisor else None
            if failure is not None:
                parts.append(f"{name} failing: {failure.error}")
        counts = self.outbox.counts()
        if self.lanes:
            parts.extend(lane.status_part() for lane in self.lanes.values())
            if counts.pending or counts.dead:
                parts.append(f"single-account queue {counts.pending}")
            for name, n in self._orphaned().items():
                parts.append(f"{name} (not in the config): {n} row(s) kept")
        else:
            parts.append(
                f"queue {counts.pending}" + (f", {counts.dead} failed" if counts.dead else "")
            )
        if self.sender.state in (
            SenderState.RETRYING,
            SenderState.CLIENT_REJECTED,
            SenderState.ACCOUNT_PARKED,
        ):
            parts.append(f"last error: {self.sender.last_error}")
        if self.sender.state is SenderState.RATE_LIMITED and self.sender.waiting_until:
            parts.append(f"Trakt asked to wait until {_clock_time(self.sender.waiting_until)}")
        if self.outbox.write_error is not None:
            parts.append(
                f"cannot write the state database ({self.outbox.write_error}): "
                f"{self.outbox.held} scrobble(s) held in memory"
            )
        if self.server_error:
            parts.append(f"listener: {self.server_error}")
        if self.config_problems:
            parts.append(f"config not applied: {self.config_problems[0]}")
        return mask_urls(" · ".join(parts))

    def status_json(self) -> dict[str, Any]:
        """What `status --json` prints; the keys are stable."""
        now = self.clock.time()
        code = self._login_code
        counts = self.outbox.counts()
        players = []
        running = self._players()
        for section in PLAYER_SECTIONS:
            player = running.get(section)
            if player is None:
                continue
            failure = self._supervisor.failing(section) if self._supervisor else None
            players.append(
                {
                    "name": section,
                    "connected": [
                        {"source": c.source, "detail": c.detail} for c in player.connections()
                    ],
                    "ignored": dict(player.ignored_counts()),
                    "failing": None
                    if failure is None
                    else {"error": failure.error, "crashes": failure.crashes},
                }
            )
        return {
            "version": __version__,
            "pid": os.getpid(),
            "uptime": round(max(0.0, self.clock.monotonic() - self._started_mono), 1),
            "auth": {
                # The household with nothing left of the single account: each account's
                # login is under "accounts".
                "state": "per account" if self._household_mode() else str(self.auth.state),
                "expires_at": iso(self.auth.expires_at) if self.auth.expires_at else None,
                "login": None
                if code is None
                else {
                    "user_code": code.user_code,
                    "verification_url": code.verification_url,
                    "url": code.activate_url,
                },
            },
            "players": players,
            "playing": [
                {
                    "source": p.source,
                    "state": str(p.phase),
                    "label": p.label,
                    "file": p.file,
                    "progress": None if p.progress is None else round(p.progress, 1),
                    "item": None
                    if p.item is None
                    else {**p.item.to_json(), "label": p.item.describe()},
                    "reason": p.reason,
                }
                for p in self.scrobbler.now_playing()
            ],
            "ignored": [
                {"at": iso(i.at), "source": i.source, "label": i.label, "reason": i.reason}
                for i in self.scrobbler.ignored()
            ],
            "queue": {
                "pending": counts.pending,
                "failed": counts.dead,
                "oldest_pending_at": iso(counts.oldest_pending_at)
                if counts.oldest_pending_at
                else None,
                "oldest_pending_age": round(now - counts.oldest_pending_at, 1)
                if counts.oldest_pending_at
                else None,
                "held_in_memory": self.outbox.held,
                "write_error": self.outbox.write_error,
            },
            "sender": {
                "state": "per account" if self._household_mode() else str(self.sender.state),
                "last_error": self.sender.last_error,
                "waiting_until": iso(self.sender.waiting_until)
                if self.sender.waiting_until
                else None,
            },
            "recent": [
                {
                    "at": iso(r.at),
                    "kind": r.kind,
                    "item": r.label,
                    "result": r.result,
                    **({"account": r.account} if r.account else {}),
                }
                for r in self.outbox.recent(10, every_account=True)
            ],
            "config": {
                "file": str(self.paths.config_file),
                "problems": list(self.config_problems),
            },
            "server": {"error": self.server_error},
            "accounts": [lane.status() for lane in self.lanes.values()],
            "accounts_removed": self._orphaned(),
        }

    def update_status(self) -> None:
        self.notifier.status(self.status_line())

    async def _heartbeat(self) -> None:
        """WATCHDOG=1 from the loop itself: a hung loop stops the pings and systemd restarts us.

        The same beat refreshes the status line; outside systemd it does not run.
        """
        interval = self.notifier.watchdog_interval
        while True:
            self.notifier.ping()
            self.update_status()
            await asyncio.sleep(interval if interval is not None else 60.0)

    # --- reload --------------------------------------------------------------------------

    def request_reload(self) -> None:
        self._reload_requested.set()

    async def _reloads(self) -> None:
        while True:
            await self._reload_requested.wait()
            self._reload_requested.clear()
            await self.reload()

    async def _reload_applied(self) -> None:
        """Wait until a reload changed the [trakt] section."""
        before = self.config.trakt
        while self.config.trakt == before:
            await self._config_changed.wait()

    def _config_missing(self) -> str | None:
        """Why the config file cannot be taken as an edit: gone, or emptied.

        Deleting the file (or its folder) or truncating it while we run is no request for all
        defaults (players off, another port): the running config stays. Only a daemon
        started without a file runs on defaults.
        """
        path = self.paths.config_file
        try:
            if not path.read_bytes().strip():
                return f"{path} is empty"
        except FileNotFoundError:
            if self.config.source is None:
                return None  # started without one: still nothing to apply
            return f"{path} is gone" if path.parent.is_dir() else f"{path.parent} is gone"
        except OSError:
            return None  # load_config says what is wrong with it
        return None

    async def reload(self) -> bool:
        """Apply the config file as it is now; keep the running one if it is invalid."""
        self.notifier.reloading()
        missing = self._config_missing()
        if missing is not None:
            if not self._config_gone:
                self._config_gone = True
                log.warning("%s: the running config stays until the file is back", missing)
            self.config_problems = (f"{missing}; the running config stays",)
            self.notifier.ready()
            self.update_status()
            return False
        if self._config_gone:
            self._config_gone = False
            log.info("%s is back", self.paths.config_file)
        try:
            # A huge file (thousands of overrides) takes a while to check: not on the loop.
            new = await asyncio.to_thread(
                load_config, self.paths.config_file, self.env, explicit=False
            )
        except ConfigError as err:
            self.config_problems = tuple(p.render(err.source) for p in err.problems)
            log.error(
                "config not reloaded, the running one stays:\n%s", "\n".join(self.config_problems)
            )
            self.notifier.ready()
            self.update_status()
            return False
        self.config_problems = ()
        # Comparing and converting tens of thousands of overrides: not on the loop either.
        changed = await asyncio.to_thread(diff_sections, self.config, new)
        described = await asyncio.to_thread(describe_changes, self.config, new)
        overrides = await asyncio.to_thread(overrides_of, new) if "overrides" in changed else None
        self.config = new
        if changed:
            log.info("config reloaded: %s", "; ".join(described))
        else:
            log.info("config reloaded: nothing changed")
        if "logging" in changed:
            logs.set_level(new.logging.level.numeric)
        if "trakt" in changed:
            self.auth.set_client(new.trakt.client_id, new.trakt.client_secret)
            # The old client may still be mid-request (a login poll): it is closed at exit.
            self._retired.append(self.client)
            self.client = self._new_client(new)
            self.client.on_success(self.scrobbler.trakt_is_back)
            self.sender.use_client(self.client)
            self._check_client_id()
        if "scrobble" in changed:
            self.sender.use_history_after(new.scrobble.history_after)
        if "notify" in changed:
            self.alerts.use(new.notify)
        if changed & {"accounts", "trakt", "scrobble"} or self.lanes:
            # A new account's lane (and its login) starts now, without a restart.
            await self._sync_lanes(new)
        # A reload is how a person says "I fixed the account" (VIP, limits): try it again,
        # with whatever waits in the outbox (another process may have queued it).
        self.sender.unpark()
        self.sender.wake()
        if changed & {"trakt", "scrobble", "overrides"}:
            self.identifier = self._new_identifier(new, overrides)
            self.scrobbler.use(self.identifier, policy_of(new), new.scrobble.rewatch_window)
        for section in PLAYER_SECTIONS:
            if section in changed:
                await self._stop_player(section)
        if changed & {"server", "plex", "jellyfin", "emby"}:
            await self._sync_server(new)
            for player in self._players().values():
                self._mount(player)
        for section in PLAYER_SECTIONS:
            # [mpris] leaves to [mpv] the mpvs it follows: a change there changes both.
            if section in changed or (section == "mpris" and "mpv" in changed):
                await self._stop_player(section)
                self._start_player(section)
        self._config_changed.set()
        self._config_changed = asyncio.Event()
        self.notifier.ready()
        self.update_status()
        return True


def _clock_time(at: float) -> str:
    """`at` (wall clock) as the local time of day, for the status line."""
    return time.strftime("%H:%M:%S", time.localtime(at))


def _row_id(args: Mapping[str, Any], *, optional: bool) -> int | None:
    row_id = args.get("id")
    if row_id is None and optional:
        return None
    if not isinstance(row_id, int) or isinstance(row_id, bool):
        raise CommandFailed("a row id (a number) is needed")
    return row_id


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    for task in reversed(tasks):
        task.cancel()
    for task in reversed(tasks):
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run(
    config: Config,
    paths: Paths,
    env: Mapping[str, str],
    *,
    clock: Clock | None = None,
    stop: asyncio.Event | None = None,
    early: EarlySignals | None = None,
) -> None:
    """Run the daemon until SIGTERM/SIGINT (or `stop` is set)."""
    app = App(config, paths, clock=clock or SystemClock(), env=env)
    await app.run(stop or asyncio.Event(), early=early)
