"""The durable queue of Trakt writes.

Every scrobble is committed to SQLite before any network I/O and deleted only once Trakt
answered, so a crash, `kill -9` or reboot loses nothing. A resend after a crash cannot create a
second play: Trakt answers 409 to a repeated watched stop, which counts as done.

A write that fails (the disk is full, the database locked) does not lose the scrobble: it is
held in memory, in order, and written as soon as a retry succeeds (`keep_trying`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from trakt_scrobbled.clock import Clock
from trakt_scrobbled.config import IMPLICIT_ACCOUNT
from trakt_scrobbled.events import Scrobble

log = logging.getLogger(__name__)

RECENT_KEPT = 50

HELD_RETRY = (1.0, 30.0)
"""Seconds between tries to write held scrobbles: first, then doubling up to the second."""


class RowState(StrEnum):
    PENDING = "pending"
    DEAD = "dead"


class RowKind(StrEnum):
    START = "start"
    STOP = "stop"
    HISTORY = "history"


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    play_id: str
    kind: RowKind
    body: dict[str, Any]
    label: str
    watched: bool
    created_at: float
    attempts: int
    maybe_sent: bool
    state: RowState
    error: str | None
    account: str = IMPLICIT_ACCOUNT
    """The Trakt account (lane) the row belongs to; '' is the implicit account."""

    @property
    def path(self) -> str:
        return "/sync/history" if self.kind is RowKind.HISTORY else f"/scrobble/{self.kind}"


@dataclass(frozen=True, slots=True)
class RecentResult:
    at: float
    kind: str
    label: str
    result: str
    account: str = ""
    """The household account it was for ('' the implicit one)."""


@dataclass(frozen=True, slots=True)
class QueueCounts:
    pending: int
    dead: int
    oldest_pending_at: float | None


@dataclass(frozen=True, slots=True)
class _Held:
    """A scrobble that could not be written yet, kept in memory until it is."""

    scrobble: Scrobble
    at: float
    watch_keys: tuple[str, ...]


_COLUMNS = (
    "id, play_id, kind, body, label, watched, created_at, attempts, maybe_sent, state, error, "
    "account"
)


def _row(r: tuple[Any, ...]) -> OutboxRow:
    return OutboxRow(
        id=r[0],
        play_id=r[1],
        kind=RowKind(r[2]),
        body=json.loads(r[3]),
        label=r[4],
        watched=bool(r[5]),
        created_at=r[6],
        attempts=r[7],
        maybe_sent=bool(r[8]),
        state=RowState(r[9]),
        error=r[10],
        account=r[11],
    )


class Outbox:
    """One account's lane of the `outbox` table, and listeners woken when a row is added.

    Every query is limited to `account`, so a lane's sender never sees, sends, retries or
    drops another account's rows; the rows of all lanes share one database and one id space.
    """

    def __init__(
        self, conn: sqlite3.Connection, clock: Clock, account: str = IMPLICIT_ACCOUNT
    ) -> None:
        self._conn = conn
        self.account = account
        self._clock = clock
        self._listeners: list[Callable[[], None]] = []
        self._held: list[_Held] = []
        self._held_changed = asyncio.Event()
        self.write_error: str | None = None
        """Why scrobbles are held in memory (e.g. the disk is full); None when none are."""

    @property
    def held(self) -> int:
        """Scrobbles waiting in memory for the database to take them."""
        return len(self._held)

    def on_change(self, listener: Callable[[], None]) -> None:
        """`listener` is called after rows were added, and when writing fails or works again."""
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()

    def enqueue(
        self, scrobble: Scrobble, *, at: float | None = None, watch_keys: tuple[str, ...] = ()
    ) -> int:
        """Store `scrobble`, replacing the same play's unsent start or pause (coalescing).

        A watched stop is never replaced: it is a play the user made.
        """
        held = _Held(scrobble, self._clock.time() if at is None else at, watch_keys)
        if self._held:
            self._held.append(held)  # behind the ones already waiting, in order
            self.flush_held()
            return 0
        try:
            row_id = self._write(held)
        except sqlite3.Error as err:
            self._hold(held, err)
            return 0
        self._notify()
        return row_id

    def _write(self, held: _Held) -> int:
        scrobble, created, watch_keys = held.scrobble, held.at, held.watch_keys
        with self._tx():
            self._conn.execute(
                "DELETE FROM outbox WHERE play_id = ? AND state = 'pending' "
                "AND kind IN ('start', 'stop') AND watched = 0 AND account = ?",
                (scrobble.play_id, self.account),
            )
            cur = self._conn.execute(
                "INSERT INTO outbox (play_id, kind, body, label, watched, created_at, account) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    scrobble.play_id,
                    str(scrobble.verb),
                    json.dumps(scrobble.body()),
                    scrobble.item.describe(),
                    int(scrobble.watched),
                    created,
                    self.account,
                ),
            )
            self._conn.executemany(
                "INSERT INTO watched (key, label, watched_at, account, play_id) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (key, scrobble.item.describe(), created, self.account, scrobble.play_id)
                    for key in watch_keys
                ],
            )
        row_id = cur.lastrowid
        assert row_id is not None
        return row_id

    def _hold(self, held: _Held, err: sqlite3.Error) -> None:
        self._held.append(held)
        first = self.write_error is None
        self.write_error = str(err)
        self._held_changed.set()
        if first:
            log.error(
                "cannot write the state database (%s): scrobbles are held in memory and "
                "written once it works again (free some disk space?)",
                err,
            )
            self._notify()  # listeners show it (`status`, the sd_notify line)

    def flush_held(self) -> bool:
        """Write the held scrobbles, oldest first; True when none is left."""
        written = 0
        while self._held:
            try:
                self._write(self._held[0])
            except sqlite3.Error as err:
                self.write_error = str(err)
                break
            self._held.pop(0)
            written += 1
        if written:
            self._notify()
        if not self._held and self.write_error is not None:
            log.warning("the state database is writable again: %d held scrobble(s) saved", written)
            self.write_error = None
            self._notify()
        return not self._held

    def lose_held(self) -> int:
        """At exit: write what is held one last time, else say what is lost (never silently)."""
        if self.flush_held():
            return 0
        lost = [h.scrobble for h in self._held]
        log.error(
            "stopping with %d scrobble(s) the state database could not take (%s); lost: %s",
            len(lost),
            self.write_error,
            "; ".join(f"{s.verb} {s.item.describe()}" for s in lost),
        )
        self._held.clear()
        return len(lost)

    async def keep_trying(self) -> None:
        """Runs with the daemon: retries held scrobbles with a growing delay, capped."""
        first, cap = HELD_RETRY
        while True:
            await self._held_changed.wait()
            self._held_changed.clear()
            delay = first
            while not self.flush_held():
                await self._clock.sleep(delay)
                delay = min(delay * 2, cap)

    def get(self, row_id: int) -> OutboxRow | None:
        r = self._conn.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE id = ? AND account = ?",  # noqa: S608
            (row_id, self.account),
        ).fetchone()
        return None if r is None else _row(r)

    def rows(self, state: RowState | None = None) -> list[OutboxRow]:
        if state is None:
            cur = self._conn.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE account = ? ORDER BY id",  # noqa: S608
                (self.account,),
            )
        else:
            cur = self._conn.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE state = ? AND account = ? "  # noqa: S608
                "ORDER BY id",
                (str(state), self.account),
            )
        return [_row(r) for r in cur.fetchall()]

    def next_pending(self) -> OutboxRow | None:
        r = self._conn.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE state = 'pending' AND account = ? "  # noqa: S608
            "ORDER BY id LIMIT 1",
            (self.account,),
        ).fetchone()
        return None if r is None else _row(r)

    def pending_history(self, limit: int) -> list[OutboxRow]:
        cur = self._conn.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE state = 'pending' AND kind = 'history' "  # noqa: S608
            "AND account = ? ORDER BY id LIMIT ?",
            (self.account, limit),
        )
        return [_row(r) for r in cur.fetchall()]

    def to_history(self, ended_before: float) -> int:
        """Watches Trakt could not take in time go to the history, with their real times.

        Absolute-numbered episodes have no history form and stay scrobbles.
        """
        with self._tx():
            cur = self._conn.execute(
                "UPDATE outbox SET kind = 'history' WHERE state = 'pending' AND kind = 'stop' "
                "AND watched = 1 AND created_at < ? "
                "AND (json_extract(body, '$.episode.number_abs') IS NULL "
                "OR json_extract(body, '$.episode.ids') IS NOT NULL) AND account = ?",
                (ended_before, self.account),
            )
        return cur.rowcount

    def mark_sending(self, *row_ids: int) -> None:
        """Record, before the request leaves, that Trakt may see it (for later dedupe)."""
        with self._tx():
            self._conn.executemany(
                "UPDATE outbox SET maybe_sent = 1, attempts = attempts + 1 "
                "WHERE id = ? AND account = ?",
                [(i, self.account) for i in row_ids],
            )

    def mark_unsent(self, error: str, *row_ids: int) -> None:
        """The request surely was not taken by Trakt (refused before sending, a 4xx such as 429)."""
        with self._tx():
            self._conn.executemany(
                "UPDATE outbox SET maybe_sent = 0, error = ? WHERE id = ? AND account = ?",
                [(error, i, self.account) for i in row_ids],
            )

    def note_error(self, error: str, *row_ids: int) -> None:
        with self._tx():
            self._conn.executemany(
                "UPDATE outbox SET error = ? WHERE id = ? AND account = ?",
                [(error, i, self.account) for i in row_ids],
            )

    def complete(self, result: str, *rows: OutboxRow) -> None:
        with self._tx():
            for row in rows:
                self._conn.execute(
                    "DELETE FROM outbox WHERE id = ? AND account = ?", (row.id, self.account)
                )
                self._record(row, result)

    # --- what was watched, to refuse a second play of the same watch ------------------------

    def play_watched(self, play_id: str) -> bool:
        """Whether the play `play_id` (one part's id) had its watch queued, however long ago."""
        if any(h.scrobble.play_id == play_id and h.watch_keys for h in self._held):
            return True
        r = self._conn.execute(
            "SELECT 1 FROM watched WHERE play_id = ? AND account = ? LIMIT 1",
            (play_id, self.account),
        ).fetchone()
        return r is not None

    def watched_since(self, keys: tuple[str, ...], since: float) -> float | None:
        """When any of `keys` was last recorded watched, if at or after `since`."""
        if not keys:
            return None
        in_memory = [h.at for h in self._held if h.at >= since and set(keys) & set(h.watch_keys)]
        if in_memory:
            return max(in_memory)
        marks = ",".join("?" * len(keys))
        r = self._conn.execute(
            f"SELECT MAX(watched_at) FROM watched WHERE key IN ({marks}) "  # noqa: S608
            "AND watched_at >= ? AND account = ?",
            (*keys, since, self.account),
        ).fetchone()
        return None if r is None or r[0] is None else float(r[0])

    def note(self, kind: str, label: str, result: str) -> None:
        """A result worth showing in `status` that involved no row (e.g. a refused duplicate)."""
        try:
            with self._tx():
                self._conn.execute(
                    "INSERT INTO recent (at, kind, label, result, account) VALUES (?, ?, ?, ?, ?)",
                    (self._clock.time(), kind, label, result, self.account),
                )
        except sqlite3.Error as err:  # only for `status`: not worth holding
            log.debug("not noted (%s): %s %s %s", err, kind, label, result)

    def bury(self, row: OutboxRow, reason: str) -> None:
        """Make `row` a dead letter: kept, visible in `queue`, never sent again by itself."""
        with self._tx():
            self._conn.execute(
                "UPDATE outbox SET state = 'dead', error = ? WHERE id = ? AND account = ?",
                (reason, row.id, self.account),
            )
            self._record(row, f"failed: {reason}")
        log.warning(
            "gave up on %s %s: %s (see `trakt-scrobbled queue`)", row.kind, row.label, reason
        )

    def retry(self, row_id: int | None = None) -> int:
        """Put dead letters (one, or all) back in the queue; returns how many."""
        with self._tx():
            if row_id is None:
                cur = self._conn.execute(
                    "UPDATE outbox SET state = 'pending', error = NULL "
                    "WHERE state = 'dead' AND account = ?",
                    (self.account,),
                )
            else:
                cur = self._conn.execute(
                    "UPDATE outbox SET state = 'pending', error = NULL "
                    "WHERE id = ? AND state = 'dead' AND account = ?",
                    (row_id, self.account),
                )
        if cur.rowcount:
            self._notify()
        return cur.rowcount

    def drop(self, row_id: int) -> bool:
        with self._tx():
            cur = self._conn.execute(
                "DELETE FROM outbox WHERE id = ? AND account = ?", (row_id, self.account)
            )
        return cur.rowcount > 0

    def counts(self) -> QueueCounts:
        pending, dead, oldest = self._conn.execute(
            "SELECT "
            "COALESCE(SUM(state = 'pending'), 0), COALESCE(SUM(state = 'dead'), 0), "
            "MIN(CASE WHEN state = 'pending' THEN created_at END) FROM outbox WHERE account = ?",
            (self.account,),
        ).fetchone()
        return QueueCounts(int(pending), int(dead), oldest)

    def recent(self, limit: int = 10, *, every_account: bool = False) -> list[RecentResult]:
        """This account's latest results, newest first; `every_account`: the household's."""
        cur = self._conn.execute(
            "SELECT at, kind, label, result, account FROM recent "
            "WHERE ? OR account = ? ORDER BY id DESC LIMIT ?",
            (every_account, self.account, limit),
        )
        return [RecentResult(*r) for r in cur.fetchall()]

    def _record(self, row: OutboxRow, result: str) -> None:
        self._conn.execute(
            "INSERT INTO recent (at, kind, label, result, account) VALUES (?, ?, ?, ?, ?)",
            (self._clock.time(), str(row.kind), row.label, result, self.account),
        )
        self._conn.execute(
            "DELETE FROM recent WHERE id <= (SELECT MAX(id) FROM recent) - ?", (RECENT_KEPT,)
        )

    def _tx(self) -> _Transaction:
        return _Transaction(self._conn)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT: the write is on disk when the block ends."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self._conn.execute("COMMIT")
                return
            except sqlite3.Error:
                # A COMMIT that failed (disk full) can leave the transaction open.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")


def accounts_with_rows(conn: sqlite3.Connection) -> dict[str, int]:
    """Every account that has rows in the outbox, with how many: a lane removed from the
    config keeps its rows, and `status` says so instead of dropping them."""
    cur = conn.execute("SELECT account, COUNT(*) FROM outbox GROUP BY account ORDER BY account")
    return {str(account): int(n) for account, n in cur.fetchall()}
