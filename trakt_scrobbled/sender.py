"""The one sender that drains the outbox to Trakt, oldest row first.

It decides, by the class of each failure, whether a row is done (2xx, 409), waits (429, outage,
login needed, client id rejected) or becomes a dead letter (4xx that will never succeed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from enum import StrEnum

from trakt_scrobbled.clock import Clock
from trakt_scrobbled.outbox import Outbox, OutboxRow
from trakt_scrobbled.trakt.auth import Auth, AuthState
from trakt_scrobbled.trakt.client import TraktClient
from trakt_scrobbled.trakt.errors import (
    Conflict,
    Forbidden,
    RateLimited,
    TraktError,
    TransportError,
    Unauthorized,
)

log = logging.getLogger(__name__)


class SenderState(StrEnum):
    IDLE = "idle"
    SENDING = "sending"
    RETRYING = "Trakt unreachable, retrying"
    LOGIN_NEEDED = "login needed"
    CLIENT_REJECTED = "client id rejected"


_BUSY_STATUSES = frozenset({502, 503, 504})


class Sender:
    def __init__(
        self,
        outbox: Outbox,
        client: TraktClient,
        auth: Auth,
        clock: Clock,
        *,
        rng: random.Random | None = None,
        backoff_base: float = 2.0,
        backoff_cap: float = 300.0,
        busy_delay: float = 30.0,
    ) -> None:
        self._outbox = outbox
        self._client = client
        self._auth = auth
        self._clock = clock
        self._rng = rng or random.Random()
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._busy_delay = busy_delay
        self._wake = asyncio.Event()
        self._failures = 0
        self.state = SenderState.IDLE
        self.last_error: str | None = None
        outbox.on_change(self.wake)

    def wake(self) -> None:
        self._wake.set()

    def use_client(self, client: TraktClient) -> None:
        """A reloaded config brought a new client (maybe a corrected client id)."""
        self._client = client
        if self.state is SenderState.CLIENT_REJECTED:
            self._set_state(SenderState.IDLE)
        self.wake()

    def park_client(self, reason: str) -> None:
        """Nothing can be sent with this client (no or wrong client id): keep queueing."""
        log.error("%s; scrobbles stay queued until the config is fixed", reason)
        self.last_error = reason
        self._set_state(SenderState.CLIENT_REJECTED)

    def _set_state(self, state: SenderState) -> None:
        if state is not self.state:
            log.debug("sender: %s -> %s", self.state, state)
            self.state = state

    async def run(self) -> None:
        while True:
            await self._step()

    async def _step(self) -> None:
        if self._auth.state is AuthState.LOGIN_NEEDED:
            self._set_state(SenderState.LOGIN_NEEDED)
            await self._wait_login_or_wake()
            return
        if self.state is SenderState.CLIENT_REJECTED:
            await self._wait_wake()
            return
        row = self._outbox.next_pending()
        if row is None:
            self._set_state(SenderState.IDLE)
            await self._wait_wake()
            return
        await self._send(row)

    async def _wait_wake(self) -> None:
        self._wake.clear()
        await self._wake.wait()

    async def _wait_login_or_wake(self) -> None:
        """Parked until a login appears (or anything else wakes us, e.g. a reload)."""
        generation = self._auth.generation
        if self._auth.reload():
            return
        changed = asyncio.ensure_future(self._auth.wait_changed(generation))
        woken = asyncio.ensure_future(self._wait_wake())
        try:
            await asyncio.wait({changed, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (changed, woken):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _send(self, row: OutboxRow) -> None:
        self._set_state(SenderState.SENDING)
        token = self._auth.access_token()
        self._outbox.mark_sending(row.id)
        try:
            resp = await self._client.post(row.path, row.body)
        except Conflict:
            self._recovered()
            log.info("%s %s: already scrobbled at Trakt (409)", row.kind, row.label)
            self._outbox.complete(row, "already scrobbled")
        except RateLimited as err:
            # The client already holds further POSTs back for Retry-After.
            self._outbox.mark_unsent(row.id, "rate limited")
            if err.retry_after is None:
                await self._backoff(row, err)
        except Unauthorized as err:
            self._outbox.mark_unsent(row.id, "login expired")
            if not await self._auth.refresh(self._client, rejected=token):
                if self._auth.state is AuthState.LOGIN_NEEDED:
                    self._set_state(SenderState.LOGIN_NEEDED)
                else:
                    await self._backoff(row, err)
        except Forbidden as err:
            self._outbox.mark_unsent(row.id, str(err))
            self.park_client(str(err))
        except TraktError as err:
            if err.retryable:
                if not isinstance(err, TransportError):
                    self._outbox.mark_unsent(row.id, str(err))
                await self._backoff(row, err)
            else:
                self._recovered()
                self._outbox.bury(row, str(err))
        else:
            self._recovered()
            result = _result_of(resp.data)
            log.info("%s %s: %s", row.kind, row.label, result)
            self._outbox.complete(row, result)

    def _recovered(self) -> None:
        if self._failures:
            log.info("Trakt reachable again")
            self._failures = 0
            self.last_error = None

    async def _backoff(self, row: OutboxRow, err: TraktError) -> None:
        self._failures += 1
        self.last_error = str(err)
        delay = min(self._backoff_cap, self._backoff_base * 2 ** (self._failures - 1))
        delay *= 0.5 + self._rng.random() / 2
        if err.status in _BUSY_STATUSES:
            delay = max(delay, self._busy_delay)
        if self._failures == 1:
            log.warning("%s; scrobbles stay queued and will be retried", err)
        self._outbox.note_error(row.id, str(err))
        self._set_state(SenderState.RETRYING)
        await self._clock.sleep(delay)


def _result_of(data: object) -> str:
    if isinstance(data, dict):
        action = data.get("action")
        if isinstance(action, str):
            return {"scrobble": "watched", "pause": "paused", "start": "watching"}.get(
                action, action
            )
        added = data.get("added")
        if isinstance(added, dict):
            return "added to history"
    return "sent"
