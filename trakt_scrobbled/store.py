"""The SQLite state file: schema, migrations and the guarantees around opening it.

A database we cannot read, or one written by a newer version, is never touched: the daemon
refuses to start and says why, because wiping it would lose queued watches.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)


class StoreError(Exception):
    """The state database cannot be used; the message says what the user can do."""


# Each entry migrates from version i to i + 1. Never edit a released entry: append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE outbox (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        play_id     TEXT NOT NULL,
        kind        TEXT NOT NULL,              -- start | stop | history
        body        TEXT NOT NULL,              -- JSON sent to Trakt (history: one item)
        label       TEXT NOT NULL DEFAULT '',   -- human description for queue/status
        watched     INTEGER NOT NULL DEFAULT 0,
        created_at  REAL NOT NULL,              -- wall clock, when the player did it
        attempts    INTEGER NOT NULL DEFAULT 0,
        not_before  REAL NOT NULL DEFAULT 0,    -- wall clock; retry backoff per row
        maybe_sent  INTEGER NOT NULL DEFAULT 0, -- a send may have reached Trakt
        state       TEXT NOT NULL DEFAULT 'pending',  -- pending | dead
        error       TEXT
    );
    CREATE INDEX outbox_state ON outbox(state, id);
    CREATE INDEX outbox_play ON outbox(play_id);
    CREATE TABLE recent (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        at      REAL NOT NULL,
        kind    TEXT NOT NULL,
        label   TEXT NOT NULL,
        result  TEXT NOT NULL
    );
    CREATE TABLE identify_cache (
        key         TEXT PRIMARY KEY,
        value       TEXT,                       -- JSON, NULL for a cached miss
        expires_at  REAL NOT NULL
    );
    """,
    """
    CREATE TABLE watched (
        key         TEXT NOT NULL,              -- the item's ids, canonical JSON
        label       TEXT NOT NULL,
        watched_at  REAL NOT NULL
    );
    CREATE INDEX watched_key ON watched(key, watched_at);
    CREATE TABLE plays (
        source      TEXT PRIMARY KEY,           -- the player source
        play_id     TEXT NOT NULL,
        data        TEXT NOT NULL,              -- JSON snapshot of the session
        saved_at    REAL NOT NULL               -- wall clock of the snapshot
    );
    """,
    # The household: every row belongs to one Trakt account. '' is the implicit account of a
    # config without [accounts] (today's token.json), so every row written before stays its.
    """
    ALTER TABLE outbox ADD COLUMN account TEXT NOT NULL DEFAULT '';
    ALTER TABLE watched ADD COLUMN account TEXT NOT NULL DEFAULT '';
    ALTER TABLE plays ADD COLUMN account TEXT NOT NULL DEFAULT '';
    CREATE INDEX outbox_account ON outbox(account, state, id);
    """,
    # `status` names the account of each recent result; the ones before were the implicit's.
    # A watch names its play, so that a play recovered after a kill knows its watch was queued
    # whatever the rewatch window ('' for the watches before: only the window covers those).
    """
    ALTER TABLE recent ADD COLUMN account TEXT NOT NULL DEFAULT '';
    ALTER TABLE watched ADD COLUMN play_id TEXT NOT NULL DEFAULT '';
    CREATE INDEX watched_play ON watched(play_id);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def open_db(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the state database at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    except sqlite3.Error as err:
        raise StoreError(f"cannot open the state database {path}: {err}") from err
    try:
        _check_and_migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _check_and_migrate(conn: sqlite3.Connection, path: Path) -> None:
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as err:
        raise StoreError(
            f"the state database {path} is unreadable ({err}); it was left untouched: "
            "move it aside to start afresh (its queued scrobbles would be lost)"
        ) from err
    if check != "ok":
        raise StoreError(
            f"the state database {path} is damaged ({check}); it was left untouched: "
            "move it aside to start afresh (its queued scrobbles would be lost)"
        )
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the state database {path} was written by a newer trakt-scrobbled "
            f"(schema {version}, this one knows {SCHEMA_VERSION}); upgrade trakt-scrobbled"
        )
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit survives power loss, not only a crash; writes are rare so this costs nothing.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    for target in range(version + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[target - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={target}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        if version:  # a new database is made by the same steps: not news
            log.info("state database migrated to schema %d", target)
    if not version:
        log.info("state database created at %s", path)


def _statements(script: str) -> list[str]:
    """Split a migration into statements so that each runs inside one transaction."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line.split("--", 1)[0] + ("\n" if "--" in line else "")
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
