"""The state database: created, migrated, and never wiped when it cannot be used."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from trakt_scrobbled.store import SCHEMA_VERSION, StoreError, open_db


def test_new_database_is_migrated_to_current_schema(tmp_path: Path) -> None:
    conn = open_db(tmp_path / "state" / "state.db")
    try:
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
