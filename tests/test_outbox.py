"""The outbox on a real SQLite file: write-ahead, coalescing, dead letters, counts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from trakt_scrobbled.clock import SystemClock
from trakt_scrobbled.events import Ids, MediaType, Scrobble, ScrobbleVerb, TraktItem
from trakt_scrobbled.outbox import Outbox, RowKind, RowState
from trakt_scrobbled.store import open_db

MOVIE = TraktItem(MediaType.MOVIE, Ids(trakt=1, imdb="tt0133093"), title="The Matrix", year=1999)
EPISODE = TraktItem(
    MediaType.EPISODE, show_ids=Ids(tvdb=81189), show_title="Show", season=1, number=2
)


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    conn = open_db(tmp_path / "state.db")
    yield Outbox(conn, SystemClock())
    conn.close()


def start(play: str, progress: float = 10.0, item: TraktItem = MOVIE) -> Scrobble:
    return Scrobble(ScrobbleVerb.START, play, item, progress)


def stop(play: str, progress: float, *, watched: bool = False) -> Scrobble:
    return Scrobble(ScrobbleVerb.STOP, play, MOVIE, progress, watched=watched)


def test_enqueue_is_on_disk_before_returning(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    conn = open_db(db)
    Outbox(conn, SystemClock()).enqueue(start("a"))
    other = open_db(db)  # a second connection sees the committed row at once
    try:
        rows = Outbox(other, SystemClock()).rows()
        assert [(r.kind, r.body["progress"]) for r in rows] == [(RowKind.START, 10.0)]
        assert rows[0].body["movie"]["ids"] == {"trakt": 1, "imdb": "tt0133093"}
    finally:
        other.close()
        conn.close()


def test_newer_start_or_pause_replaces_unsent_one(outbox: Outbox) -> None:
    outbox.enqueue(start("a", 10))
    outbox.enqueue(stop("a", 20))
    outbox.enqueue(start("a", 30))
    outbox.enqueue(start("b", 5))
    rows = outbox.rows()
    assert [(r.play_id, r.kind, r.body["progress"]) for r in rows] == [
        ("a", RowKind.START, 30),
        ("b", RowKind.START, 5),
    ]


def test_stop_replaces_both_but_a_watched_stop_is_never_replaced(outbox: Outbox) -> None:
    outbox.enqueue(start("a", 10))
    outbox.enqueue(stop("a", 95, watched=True))
    outbox.enqueue(start("a", 96))  # the machine never does this, but the outbox must hold
    rows = outbox.rows()
    assert [(r.kind, r.watched) for r in rows] == [(RowKind.STOP, True), (RowKind.START, False)]


def test_episode_body_uses_show_and_numbers(outbox: Outbox) -> None:
    outbox.enqueue(start("e", 12.5, EPISODE))
    (row,) = outbox.rows()
    assert row.body == {
        "show": {"ids": {"tvdb": 81189}, "title": "Show"},
        "episode": {"season": 1, "number": 2},
        "progress": 12.5,
    }
    assert row.path == "/scrobble/start"
    assert row.label == "Show S01E02"


def test_dead_letters_retry_and_drop(outbox: Outbox) -> None:
    first = outbox.enqueue(stop("a", 50))
    second = outbox.enqueue(stop("b", 50))
    row = outbox.get(first)
    assert row is not None
    outbox.bury(row, "Trakt answered 404")
    assert outbox.counts().pending == 1 and outbox.counts().dead == 1
    dead = outbox.rows(RowState.DEAD)
    assert [(r.id, r.error) for r in dead] == [(first, "Trakt answered 404")]
    assert outbox.next_pending() is not None and outbox.next_pending().id == second  # type: ignore[union-attr]
    assert outbox.recent(1)[0].result == "failed: Trakt answered 404"
    assert outbox.retry(first) == 1
    assert outbox.counts().dead == 0
    assert outbox.retry(first) == 0
    assert outbox.drop(second) is True
    assert outbox.drop(second) is False
    assert [r.id for r in outbox.rows()] == [first]


def test_counts_report_oldest_pending(outbox: Outbox) -> None:
    outbox.enqueue(start("a"), at=1000.0)
    outbox.enqueue(start("b"), at=2000.0)
    counts = outbox.counts()
    assert (counts.pending, counts.dead, counts.oldest_pending_at) == (2, 0, 1000.0)


def test_listeners_are_woken_on_enqueue_and_retry(outbox: Outbox) -> None:
    calls: list[str] = []
    outbox.on_change(lambda: calls.append("x"))
    row_id = outbox.enqueue(start("a"))
    row = outbox.get(row_id)
    assert row is not None
    outbox.bury(row, "no")
    outbox.retry()
    assert calls == ["x", "x"]


def test_mark_sending_counts_attempts_and_marks_maybe_sent(outbox: Outbox) -> None:
    row_id = outbox.enqueue(stop("a", 90, watched=True))
    outbox.mark_sending(row_id)
    row = outbox.get(row_id)
    assert row is not None and row.attempts == 1 and row.maybe_sent
    outbox.mark_unsent("rate limited", row_id)
    row = outbox.get(row_id)
    assert row is not None and not row.maybe_sent and row.error == "rate limited"
