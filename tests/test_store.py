"""The state database: created, migrated, and never wiped when it cannot be used."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from tests.clocks import ManualClock
from trakt_scrobbled.events import Ids, MediaType, Scrobble, ScrobbleVerb, TraktItem
from trakt_scrobbled.outbox import Outbox
from trakt_scrobbled.store import MIGRATIONS, SCHEMA_VERSION, StoreError, _statements, open_db


def test_new_database_is_migrated_to_current_schema(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trakt_scrobbled.store")
    conn = open_db(tmp_path / "state" / "state.db")
    try:
        # Made by the migrations, but said once: a new database has nothing to migrate.
        assert caplog.messages == [f"state database created at {tmp_path / 'state' / 'state.db'}"]
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"outbox", "recent", "identify_cache"} <= tables
    finally:
        conn.close()


def test_reopening_keeps_rows(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    conn = open_db(db)
    conn.execute(
        "INSERT INTO outbox (play_id, kind, body, created_at) VALUES ('p', 'stop', '{}', 1)"
    )
    conn.close()
    conn = open_db(db)
    try:
        assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 1
    finally:
        conn.close()


def test_corrupt_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    garbage = b"this is not an sqlite database" * 100
    db.write_bytes(garbage)
    with pytest.raises(StoreError, match="unreadable") as info:
        open_db(db)
    assert "left untouched" in str(info.value)
    assert db.read_bytes() == garbage


def test_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.execute("CREATE TABLE future (x)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(StoreError, match="newer trakt-scrobbled"):
        open_db(db)
    assert db.read_bytes() == before


# Schema 2 as released (before the household), written out here rather than taken from
# MIGRATIONS so that an edit to a released migration cannot hide from this test.
SCHEMA_2 = """
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, play_id TEXT NOT NULL, kind TEXT NOT NULL,
    body TEXT NOT NULL, label TEXT NOT NULL DEFAULT '', watched INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0, maybe_sent INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending', error TEXT
);
CREATE INDEX outbox_state ON outbox(state, id);
CREATE INDEX outbox_play ON outbox(play_id);
CREATE TABLE recent (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, kind TEXT NOT NULL,
    label TEXT NOT NULL, result TEXT NOT NULL
);
CREATE TABLE identify_cache (key TEXT PRIMARY KEY, value TEXT, expires_at REAL NOT NULL);
CREATE TABLE watched (key TEXT NOT NULL, label TEXT NOT NULL, watched_at REAL NOT NULL);
CREATE INDEX watched_key ON watched(key, watched_at);
CREATE TABLE plays (
    source TEXT PRIMARY KEY, play_id TEXT NOT NULL, data TEXT NOT NULL, saved_at REAL NOT NULL
);
INSERT INTO outbox (play_id, kind, body, label, watched, created_at, attempts, maybe_sent, state)
    VALUES ('p1', 'start', '{"progress": 1}', 'Heat (1995)', 0, 100.5, 0, 0, 'pending'),
           ('p1', 'stop', '{"progress": 90}', 'Heat (1995)', 1, 101.5, 3, 1, 'pending'),
           ('p2', 'history', '{"movies": []}', 'Alien (1979)', 1, 50.0, 9, 0, 'dead');
INSERT INTO watched VALUES ('{"trakt":1}', 'Heat (1995)', 101.5);
INSERT INTO plays VALUES ('mpv:/tmp/mpv.sock', 'p1', '{"state": "paused"}', 101.0);
PRAGMA user_version = 2;
"""


def test_schema_2_database_migrates_keeping_every_row_for_the_implicit_account(
    tmp_path: Path,
) -> None:
    db = tmp_path / "state.db"
    old = sqlite3.connect(db)
    old.executescript(SCHEMA_2)
    old.close()
    select_outbox = (
        "SELECT id, play_id, kind, body, label, watched, created_at, attempts, maybe_sent, state "
        "FROM outbox ORDER BY id"
    )
    before = sqlite3.connect(db)
    outbox = before.execute(select_outbox).fetchall()
    watched = before.execute("SELECT key, label, watched_at FROM watched").fetchall()
    plays = before.execute("SELECT source, play_id, data, saved_at FROM plays").fetchall()
    before.close()
    assert len(outbox) == 3

    conn = open_db(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute(select_outbox).fetchall() == outbox
        assert conn.execute("SELECT key, label, watched_at FROM watched").fetchall() == watched
        assert conn.execute("SELECT source, play_id, data, saved_at FROM plays").fetchall() == plays
        for table in ("outbox", "watched", "plays"):
            accounts = {r[0] for r in conn.execute(f"SELECT account FROM {table}")}  # noqa: S608
            assert accounts == {""}, table
        # A new row names its account; the old ones still read as the implicit account's.
        conn.execute(
            "INSERT INTO outbox (play_id, kind, body, created_at, account) "
            "VALUES ('p3', 'start', '{}', 200, 'alice')"
        )
        by_account = dict(
            conn.execute("SELECT account, COUNT(*) FROM outbox GROUP BY account").fetchall()
        )
        assert by_account == {"": 3, "alice": 1}
    finally:
        conn.close()
    # Opening again migrates nothing more and loses nothing.
    conn = open_db(db)
    try:
        assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 4
    finally:
        conn.close()


def test_schema_3_database_migrates_recent_results_and_watches(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Schema 4 names the account of each recent result (schema 3's were the implicit one's) and
    the play of each watch."""
    db = tmp_path / "state.db"
    old = sqlite3.connect(db, isolation_level=None)
    for script in MIGRATIONS[:3]:
        for statement in _statements(script):
            old.execute(statement)
    old.execute(
        "INSERT INTO recent (at, kind, label, result) VALUES (1, 'stop', 'Film', 'watched')"
    )
    old.execute("INSERT INTO watched (key, label, watched_at) VALUES ('k0', 'Film', 1)")
    old.execute("PRAGMA user_version = 3")
    old.close()

    caplog.set_level(logging.INFO, logger="trakt_scrobbled.store")
    conn = open_db(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        assert caplog.messages == ["state database migrated to schema 4"]
        clock = ManualClock()
        Outbox(conn, clock, account="alice").note("stop", "Other", "watched")
        implicit = Outbox(conn, clock)
        assert [(r.label, r.account) for r in implicit.recent()] == [("Film", "")]
        assert [(r.label, r.account) for r in implicit.recent(every_account=True)] == [
            ("Other", "alice"),
            ("Film", ""),
        ]
        # A watch names its play from now on; one of schema 3 has none.
        assert conn.execute("SELECT play_id FROM watched").fetchall() == [("",)]
        item = TraktItem(MediaType.MOVIE, Ids(trakt=1), title="Heat")
        stop = Scrobble(ScrobbleVerb.STOP, "p9", item, 95.0, watched=True)
        implicit.enqueue(stop, watch_keys=("k",))
        assert implicit.play_watched("p9") and not implicit.play_watched("p8")
        assert not Outbox(conn, clock, account="alice").play_watched("p9")
    finally:
        conn.close()
