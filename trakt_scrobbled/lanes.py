"""One household account's lane: its outbox rows, login, refresh, client and sender.

Trakt's limits are per user, so each account has its own POST spacing, Retry-After, backoff
and parking: a 401 or a 429 storm for one account never holds another's scrobbles. The lane
also keeps its own device-code login running while it has no login, with its code for
`status` and the sd_notify line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

from trakt_scrobbled.alerts import Alert, AlertKind
from trakt_scrobbled.clock import Clock
from trakt_scrobbled.config import Config
from trakt_scrobbled.filewatch import FileWatcher
from trakt_scrobbled.outbox import Outbox
from trakt_scrobbled.paths import Paths
from trakt_scrobbled.sender import Sender
from trakt_scrobbled.trakt.auth import Auth, AuthState, TokenStore
from trakt_scrobbled.trakt.client import TraktClient
from trakt_scrobbled.trakt.device import DeviceCode, login_until_done
from trakt_scrobbled.trakt.ratelimit import PostRateLimiter
from trakt_scrobbled.trakt.refresh import TokenRefresher

log = logging.getLogger(__name__)


class AccountLane:
    """The parts that serve one named account; `start` runs them, `aclose` ends them."""

    def __init__(
        self,
        name: str,
        conn: sqlite3.Connection,
        paths: Paths,
        config: Config,
        clock: Clock,
        *,
        on_alert: Callable[[Alert], None],
        on_change: Callable[[], None],
    ) -> None:
        self.name = name
        self._clock = clock
        self._config = config
        self._on_alert = on_alert
        self._on_change = on_change
        self.token_file = paths.account_token_file(name)
        self.outbox = Outbox(conn, clock, account=name)
        self.auth = Auth(
            TokenStore(self.token_file),
            clock,
            client_id=config.trakt.client_id,
            client_secret=config.trakt.client_secret,
            account=name,
        )
        self.limiter = PostRateLimiter(clock)
        self.client = self._new_client(config)
        self.sender = Sender(
            self.outbox,
            self.client,
            self.auth,
            clock,
            history_after=config.scrobble.history_after,
            limiter=self.limiter,
            on_alert=on_alert,
            account=name,
        )
        self.login_code: DeviceCode | None = None
        self._retired: list[TraktClient] = []
        self._tasks: list[asyncio.Task[None]] = []

    def _new_client(self, config: Config) -> TraktClient:
        return TraktClient(
            config.trakt.api_url, config.trakt.client_id, self.limiter, token=self.auth.access_token
        )

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        refresher = TokenRefresher(lambda: self.client, self.auth, self._clock)
        self._tasks = [
            loop.create_task(self.sender.run(), name=f"sender-{self.name}"),
            loop.create_task(refresher.follow(), name=f"refresh-{self.name}"),
            loop.create_task(self._keep_logged_in(), name=f"login-{self.name}"),
            loop.create_task(self.outbox.keep_trying(), name=f"outbox-{self.name}"),
        ]
        if self.auth.state is AuthState.LOGIN_NEEDED:
            log.warning("account %s: not logged in to Trakt; its scrobbles are queued", self.name)

    def use_config(self, config: Config) -> None:
        """A reload: new Trakt credentials or history_after; a parked account is tried again."""
        old, self._config = self._config, config
        if old.trakt != config.trakt:
            self.auth.set_client(config.trakt.client_id, config.trakt.client_secret)
            self._retired.append(self.client)
            self.client = self._new_client(config)
            self.sender.use_client(self.client)
        self.sender.use_history_after(config.scrobble.history_after)
        self.sender.unpark()
        self.sender.wake()

    def logged_out(self) -> None:
        """`logout --account NAME` deleted the token file: stop using the login now."""
        self.auth.drop()
        self._on_change()

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self.outbox.lose_held()
        for client in (*self._retired, self.client):
            await client.aclose()

    def status(self) -> dict[str, Any]:
        counts = self.outbox.counts()
        code = self.login_code
        return {
            "name": self.name,
            "logged_in": self.auth.state is not AuthState.LOGIN_NEEDED,
            "login_code": None
            if code is None
            else {"user_code": code.user_code, "url": code.activate_url},
            "sender": str(self.sender.state),
            "last_error": self.sender.last_error,
            "queue": {"pending": counts.pending, "failed": counts.dead},
        }

    def status_part(self) -> str:
        """This account in the one-line status (sd_notify STATUS, `status`)."""
        counts = self.outbox.counts()
        text = f"{self.name}: queue {counts.pending}"
        if counts.dead:
            text += f", {counts.dead} failed"
        if self.auth.state is AuthState.LOGIN_NEEDED:
            code = self.login_code
            text += (
                f", login needed: enter {code.user_code} at {code.activate_url}"
                if code is not None
                else ", login needed"
            )
        elif self.sender.last_error:
            text += f", last error: {self.sender.last_error}"
        return text

    # --- login -----------------------------------------------------------------------------

    async def _keep_logged_in(self) -> None:
        """The account's device-code login whenever it has none; a login made meanwhile with
        `trakt-scrobbled login --account NAME` (the token file appears) ends it."""
        while True:
            generation = self.auth.generation
            if self.auth.state is not AuthState.LOGIN_NEEDED:
                await self.auth.wait_changed(generation)
                continue
            trakt = self._config.trakt
            if not (trakt.client_id and trakt.client_secret):
                await self.auth.wait_changed(generation)  # the App says what is missing
                continue
            login = asyncio.ensure_future(
                login_until_done(
                    self.client,
                    self._clock,
                    client_id=trakt.client_id,
                    client_secret=trakt.client_secret,
                    announce=self._announce,
                )
            )
            elsewhere = asyncio.ensure_future(self._token_saved_elsewhere())
            done: set[asyncio.Future[Any]] = set()
            try:
                done, _ = await asyncio.wait(
                    {login, elsewhere}, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for task in (login, elsewhere):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if login in done:
                self.auth.set_token(login.result())  # logs "account NAME: logged in"
            self.login_code = None
            self._on_change()

    async def _token_saved_elsewhere(self) -> None:
        written = asyncio.Event()
        watcher = FileWatcher(self.token_file, written.set, asyncio.get_running_loop(), settle=0.1)
        watcher.start()
        try:
            while not self.auth.reload():
                await written.wait()
                written.clear()
        finally:
            watcher.stop()

    def _announce(self, code: DeviceCode) -> None:
        self.login_code = code
        log.warning(
            "account %s: Trakt login needed: open %s and enter the code %s (or open %s); "
            "its scrobbles stay queued",
            self.name,
            code.verification_url,
            code.user_code,
            code.activate_url,
        )
        self._on_alert(
            Alert(
                AlertKind.LOGIN,
                f"Trakt login needed for {self.name}: code {code.user_code}",
                f"Open {code.verification_url} and enter {code.user_code} "
                f"(or open {code.activate_url}).",
            )
        )
        self._on_change()
