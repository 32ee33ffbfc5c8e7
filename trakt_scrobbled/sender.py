"""The one sender that drains the outbox to Trakt, oldest row first.

It decides, by the class of each failure, whether a row is done (2xx, 409), waits (429, outage,
login needed, client id rejected) or becomes a dead letter (4xx that will never succeed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from trakt_scrobbled.alerts import Alert, AlertKind
from trakt_scrobbled.clock import Clock
from trakt_scrobbled.history import (
    BATCH_SIZE,
    already_recorded,
    build_batch,
    iso,
    not_found,
)
from trakt_scrobbled.logs import for_account
from trakt_scrobbled.outbox import Outbox, OutboxRow, RowKind
from trakt_scrobbled.trakt.auth import Auth, AuthState
from trakt_scrobbled.trakt.client import TraktClient
from trakt_scrobbled.trakt.errors import (
    Conflict,
    Forbidden,
    RateLimited,
    TraktError,
    Unauthorized,
)
from trakt_scrobbled.trakt.ratelimit import PostRateLimiter

log = logging.getLogger(__name__)


class SenderState(StrEnum):
    IDLE = "idle"
    SENDING = "sending"
    RETRYING = "Trakt unreachable, retrying"
    RATE_LIMITED = "rate limited, waiting"
    LOGIN_NEEDED = "login needed"
    CLIENT_REJECTED = "client id rejected"
    ACCOUNT_PARKED = "account parked"


_BUSY_STATUSES = frozenset({502, 503, 504})
_ACCOUNT_STATUSES = frozenset({420, 423, 426})
"""Trakt's answers about the whole account (a limit, locked, VIP needed), not one call."""
_SLACK = 60.0
"""Seconds of clock difference allowed when looking for a watch in Trakt's history."""
_MAX_HISTORY_PAGES = 20


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
        history_after: float = 60.0,
        limiter: PostRateLimiter | None = None,
        restart_gap: float = 1.0,
        on_alert: Callable[[Alert], None] | None = None,
        account: str = "",
    ) -> None:
        """`limiter` is the client's: given it, a row's form (scrobble or history entry) is
        chosen when the POST may leave, not before a wait for a Retry-After; and the first
        POST of a run keeps `restart_gap` after whatever a killed previous run last sent.
        `account` names the household account in every line ('' the single account)."""
        self._log = for_account(log, account)
        self._outbox = outbox
        self._client = client
        self._auth = auth
        self._clock = clock
        self._rng = rng or random.Random()
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._busy_delay = busy_delay
        self._history_after = history_after
        self._limiter = limiter
        self._restart_gap = restart_gap
        self._wake = asyncio.Event()
        self._back = asyncio.Event()
        """Set when any call to Trakt succeeded (or a new row came): a backoff wait ends."""
        self._back_reason = ""
        self._unparked = asyncio.Event()
        self._on_alert = on_alert or (lambda alert: None)
        self._failures = 0
        self.state = SenderState.IDLE
        self.last_error: str | None = None
        self.waiting_until: float | None = None
        """Wall-clock end of a Retry-After wait, for `status`; None when not waiting for one."""
        outbox.on_change(self.wake)
        client.on_success(self.trakt_back)

    def use_history_after(self, seconds: float) -> None:
        """A reloaded [scrobble] history_after."""
        self._history_after = seconds

    def wake(self) -> None:
        """A new row (or a reload): send now; a row waiting out a backoff is tried again too,
        so that the next thing the user plays is the probe that finds Trakt back."""
        self._wake.set()
        self._end_backoff("a new scrobble came")

    def trakt_back(self) -> None:
        """Some call to Trakt (ours, a search, a refresh) succeeded: rows in backoff go now."""
        self._end_backoff("Trakt answered another call")

    def _end_backoff(self, why: str) -> None:
        if self._failures and not self._back.is_set():
            self._back_reason = why
            self._back.set()

    def use_client(self, client: TraktClient) -> None:
        """A reloaded config brought a new client (maybe a corrected client id)."""
        self._client = client
        client.on_success(self.trakt_back)
        if self.state is SenderState.CLIENT_REJECTED:
            self._set_state(SenderState.IDLE)
        self.wake()

    def park_client(self, reason: str) -> None:
        """Nothing can be sent with this client (no or wrong client id): keep queueing."""
        self._log.error("%s; scrobbles stay queued until the config is fixed", reason)
        self.last_error = reason
        self._set_state(SenderState.CLIENT_REJECTED)

    def park_account(self, reason: str) -> None:
        """Trakt refuses the whole account (420 limit, 423 locked, 426 VIP needed): every row
        would fail alike, so none is dead-lettered; the queue waits, said once."""
        if self.state is not SenderState.ACCOUNT_PARKED:
            self._log.error(
                "%s; this account's scrobbles stay queued (none is lost): once that is fixed, "
                "`trakt-scrobbled reload` sends them",
                reason,
            )
            self._on_alert(Alert(AlertKind.PARKED, "Trakt scrobbles on hold", reason))
        self.last_error = reason
        self._unparked.clear()
        self._set_state(SenderState.ACCOUNT_PARKED)

    def unpark(self) -> None:
        """A reload or a new login: try the account again."""
        if self.state is SenderState.ACCOUNT_PARKED:
            self._set_state(SenderState.IDLE)
            self._unparked.set()
            self.wake()

    def _set_state(self, state: SenderState) -> None:
        if state is not self.state:
            self._log.debug("sender: %s -> %s", self.state, state)
            self.state = state

    async def run(self) -> None:
        if self._limiter is not None:
            self._limiter.defer(self._restart_gap)
        while True:
            try:
                await self._step()
            except sqlite3.Error as err:
                # The disk is full (or the database locked): rows stay as they were on disk;
                # an answer we could not record is settled by the 409/history check later.
                await self._store_failed(err)

    async def _store_failed(self, err: sqlite3.Error) -> None:
        self._failures += 1
        self.last_error = f"cannot write the state database: {err}"
        if self._failures == 1:
            # The outbox says it once as an error; this is its consequence.
            self._log.warning("%s; sending paused, retrying", self.last_error)
        self._set_state(SenderState.RETRYING)
        delay = min(self._backoff_cap, self._backoff_base * 2 ** (self._failures - 1))
        await self._clock.sleep(delay)

    async def _step(self) -> None:
        if self._auth.state is AuthState.LOGIN_NEEDED:
            self._set_state(SenderState.LOGIN_NEEDED)
            await self._wait_login_or_wake()
            return
        if self.state is SenderState.CLIENT_REJECTED:
            await self._wait_wake()
            return
        if self.state is SenderState.ACCOUNT_PARKED:
            await self._wait_unparked()
            return
        row = self._outbox.next_pending()
        if row is None:
            self._set_state(SenderState.IDLE)
            await self._wait_wake()
            return
        if self._limiter is not None and (wait := self._limiter.wait_time()) > 0:
            # A watched stop sent after this wait is dated by Trakt when it arrives: decide
            # between scrobble and history entry afterwards, with the row as it is then.
            await self._clock.sleep(wait)
            return
        if self.waiting_until is not None:
            self.waiting_until = None
            if self.state is SenderState.RATE_LIMITED:
                self.last_error = None
                self._set_state(SenderState.SENDING)
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

    async def _wait_unparked(self) -> None:
        """New plays still queue meanwhile; only `unpark` or a new login ends the wait."""
        changed = asyncio.ensure_future(self._auth.wait_changed(self._auth.generation))
        unparked = asyncio.ensure_future(self._unparked.wait())
        try:
            done, _ = await asyncio.wait({changed, unparked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (changed, unparked):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if changed in done:
            self.unpark()

    async def _send(self, row: OutboxRow) -> None:
        now = self._clock.time()
        late = self._outbox.to_history(now - self._history_after)
        if late:
            self._log.info("%d watch(es) not delivered in time go to the Trakt history", late)
        if late or row.kind is RowKind.HISTORY or self._outbox.pending_history(1):
            # Watches first, whatever row is oldest: one row Trakt keeps refusing (a pause,
            # a start) must not hold every watch behind it. History entries carry their own
            # times, so their order against the scrobbles does not matter.
            await self._send_history()
            return
        if row.kind is RowKind.START and now - row.created_at > self._history_after:
            # "Watching" something that ended long ago would be a lie.
            self._outbox.complete("skipped: too old to be watching", row)
            return
        await self._post([row], row.path, row.body)

    async def _send_history(self) -> None:
        rows = self._outbox.pending_history(BATCH_SIZE)
        maybe = [r for r in rows if r.maybe_sent]
        if maybe:
            try:
                history = await self._history_since(min(r.created_at for r in maybe) - _SLACK)
            except TraktError as err:
                # A failed look-up sent nothing: every row stays as unsure as it was.
                await self._failed(err, rows, self._auth.access_token(), posted=False)
                return
            found = already_recorded([(r.id, r.body, r.created_at) for r in maybe], history, _SLACK)
            there = [r for r in maybe if r.id in found]
            if there:
                self._log.info("%d watch(es) were already in the Trakt history", len(there))
                self._outbox.complete("already in history", *there)
            rows = [r for r in rows if r not in there]
        if rows:
            batch = build_batch([(r.body, r.created_at) for r in rows])
            await self._post(rows, "/sync/history", batch)

    async def _history_since(self, since: float) -> list[dict[str, Any]]:
        """Trakt's history from `since` on, newest first, every page."""
        entries: list[dict[str, Any]] = []
        page, pages = 1, 1
        while page <= min(pages, _MAX_HISTORY_PAGES):
            resp = await self._client.get(
                "/sync/history",
                {"start_at": iso(since), "page": page, "limit": 100},
                auth=True,
            )
            if isinstance(resp.data, list):
                entries.extend(e for e in resp.data if isinstance(e, dict))
            try:
                pages = int(resp.headers.get("x-pagination-page-count", "1"))
            except ValueError:
                pages = 1
            page += 1
        return entries

    async def _post(self, rows: list[OutboxRow], path: str, body: dict[str, Any]) -> None:
        self._set_state(SenderState.SENDING)
        token = self._auth.access_token()
        self._outbox.mark_sending(*(r.id for r in rows))
        try:
            resp = await self._client.post(path, body)
        except Conflict:
            self._recovered()
            for row in rows:
                self._log.info("%s %s: already scrobbled at Trakt (409)", row.kind, row.label)
            self._outbox.complete("already scrobbled", *rows)
        except TraktError as err:
            await self._failed(err, rows, token)
        else:
            self._recovered()
            if path == "/sync/history":
                missing = not_found([(r.id, r.body) for r in rows], resp.data)
                for row in rows:
                    if row.id in missing:
                        self._outbox.bury(row, "Trakt does not know this item")
                added = [r for r in rows if r.id not in missing]
                self._log.info("%d late watch(es) added to the Trakt history", len(added))
                self._outbox.complete("added to history", *added)
                return
            (row,) = rows
            result = _result_of(resp.data)
            self._log.info("%s %s: %s", row.kind, row.label, result)
            self._outbox.complete(result, row)

    async def _failed(
        self, err: TraktError, rows: list[OutboxRow], token: str | None, *, posted: bool = True
    ) -> None:
        ids = [r.id for r in rows]
        if isinstance(err, RateLimited):
            # The client already holds further POSTs back for Retry-After; not GETs.
            self._unsent("rate limited", rows)
            if err.retry_after is None:
                await self._backoff(ids, err)
                return
            self.waiting_until = self._clock.time() + err.retry_after
            if err.retry_after >= 10:
                self.last_error = f"Trakt asked to wait {err.retry_after:.0f} s"
                self._set_state(SenderState.RATE_LIMITED)
            if not posted:
                await self._clock.sleep(err.retry_after)
        elif isinstance(err, Unauthorized):
            self._unsent("login expired", rows)
            if not await self._auth.refresh(self._client, rejected=token):
                if self._auth.state is AuthState.LOGIN_NEEDED:
                    self._set_state(SenderState.LOGIN_NEEDED)
                else:
                    await self._backoff(ids, err)
        elif isinstance(err, Forbidden):
            self._unsent(str(err), rows)
            self.park_client(str(err))
        elif err.status in _ACCOUNT_STATUSES:
            self._unsent(str(err), rows)
            self.park_account(str(err))
        elif err.retryable:
            # No answer, or a 5xx: Trakt may have taken it (an edge's 502/504/520/524 comes
            # after Trakt got the request), so the row stays unsure: looked up before it is
            # sent again as a history entry (a scrobble sent again gets a 409 at worst).
            await self._backoff(ids, err)
        else:
            self._recovered()
            for row in rows:
                self._outbox.bury(row, str(err))
                self._on_alert(
                    Alert(AlertKind.DEAD, "Trakt refused a scrobble", f"{row.label}: {err}")
                )

    def _unsent(self, error: str, rows: list[OutboxRow]) -> None:
        """This attempt surely did not reach Trakt; an earlier one (answer lost) still may have.

        `rows` are as read before the attempt, so `maybe_sent` tells about the earlier ones.
        """
        self._outbox.mark_unsent(error, *(r.id for r in rows if not r.maybe_sent))
        self._outbox.note_error(error, *(r.id for r in rows if r.maybe_sent))

    def _recovered(self) -> None:
        if self._failures:
            self._log.info("Trakt reachable again")
            self._failures = 0
            self.last_error = None
        self._back.clear()

    async def _backoff(self, row_ids: list[int], err: TraktError) -> None:
        self._failures += 1
        self.last_error = str(err)
        delay = min(self._backoff_cap, self._backoff_base * 2 ** (self._failures - 1))
        delay *= 0.5 + self._rng.random() / 2
        if err.status in _BUSY_STATUSES:
            delay = max(delay, self._busy_delay)
        if self._failures == 1:
            self._log.warning("%s; scrobbles stay queued and will be retried", err)
        self._outbox.note_error(str(err), *row_ids)
        self._set_state(SenderState.RETRYING)
        self._back.clear()
        sleeper = asyncio.ensure_future(self._clock.sleep(delay))
        back = asyncio.ensure_future(self._back.wait())
        try:
            await asyncio.wait({sleeper, back}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, back):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if back.done() and not back.cancelled():
            self._log.info("%s: trying the queue again now", self._back_reason)


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
