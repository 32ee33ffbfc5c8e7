"""The scrobbler shell around the machine: identification, the outbox, duplicates, restarts."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.clocks import DrivenClock, ManualClock
from trakt_scrobbled.config import AccountConfig
from trakt_scrobbled.events import (
    Ended,
    EndReason,
    Ids,
    MediaInfo,
    MediaType,
    Playing,
    Progressed,
    TraktItem,
)
from trakt_scrobbled.outbox import Outbox, RowKind
from trakt_scrobbled.playstate import PlayStore, Snapshot
from trakt_scrobbled.router import route
from trakt_scrobbled.scrobbler import Scrobbler
from trakt_scrobbled.session import Phase, Policy, Reported, SessionState
from trakt_scrobbled.store import open_db

MOVIE = TraktItem(MediaType.MOVIE, Ids(trakt=1, imdb="tt0133093"), title="The Matrix", year=1999)
DURATION = 1000.0


@dataclass(frozen=True)
class Found:
    item: TraktItem | None
    reason: str | None = None
    retry_later: bool = False
    episodes: tuple[int, ...] = ()


class KnownItems:
    """Identification by path, from a table the test gives (our own Protocol)."""

    def __init__(self, items: dict[str, TraktItem]) -> None:
        self.items = items

    async def identify(self, media: MediaInfo) -> Found:
        item = self.items.get(media.path or "")
        return Found(item, None if item else "unknown")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


def make(db: Path, clock: ManualClock, window: float = 3600.0) -> tuple[Scrobbler, Outbox]:
    conn = open_db(db)
    outbox = Outbox(conn, clock)
    scrobbler = Scrobbler(
        outbox,
        KnownItems({"/m/matrix.mkv": MOVIE}),
        clock,
        Policy(watched_threshold=90.0),
        plays=PlayStore(conn),
        rewatch_window=window,
    )
    return scrobbler, outbox


SOURCE = "mpv:/tmp/s"


def playing(at: float, path: str = "/m/matrix.mkv") -> Playing:
    return Playing(SOURCE, MediaInfo(path=path, duration=DURATION), at, DURATION)


async def play(scrobbler: Scrobbler, at: float = 100.0, path: str = "/m/matrix.mkv") -> None:
    scrobbler.handle(playing(at, path))
    async with asyncio.timeout(2):
        while scrobbler.now_playing()[0].reason == "identifying":  # noqa: ASYNC110 - one task hop
            await asyncio.sleep(0)


def watched_rows(outbox: Outbox) -> list[float]:
    return [r.created_at for r in outbox.rows() if r.watched]


async def test_a_second_watch_within_the_window_is_not_recorded(db: Path) -> None:
    clock = ManualClock()
    scrobbler, outbox = make(db, clock, window=3600)
    for _ in range(2):  # watch to the end, then again (e.g. resumed after the credits)
        await play(scrobbler)
        clock.advance(5)
        scrobbler.handle(Ended(SOURCE, 950.0, EndReason.EOF))
        clock.advance(60)
    assert len(watched_rows(outbox)) == 1
    # The rewatch was started (Trakt showed it playing), and closes under 80 %: Trakt records
    # no second play, and "watching now" does not dangle.
    rewatch = [r for r in outbox.rows() if r.play_id != outbox.rows()[0].play_id]
    assert [(r.kind, r.body["progress"], r.watched) for r in rewatch] == [
        (RowKind.STOP, 79.9, False)
    ]
    clock.advance(3600)  # a real rewatch, later
    await play(scrobbler)
    scrobbler.handle(Ended(SOURCE, 950.0, EndReason.EOF))
    assert len(watched_rows(outbox)) == 2
    await scrobbler.aclose()


async def test_a_wall_clock_jump_neither_inflates_progress_nor_fakes_a_watch(db: Path) -> None:
    clock = ManualClock()
    scrobbler, outbox = make(db, clock)
    await play(scrobbler, at=100.0)
    clock.wall += 10 * 3600  # suspended for ten hours: the wall clock jumps, monotonic does not
    clock.mono += 1
    scrobbler.handle(Ended(SOURCE, None, EndReason.GONE))
    (stop,) = [r for r in outbox.rows() if r.kind is RowKind.STOP]
    assert stop.body["progress"] == pytest.approx(10.1)
    assert not stop.watched
    await scrobbler.aclose()


async def test_restart_after_the_threshold_records_the_watch_at_its_time(db: Path) -> None:
    clock = ManualClock()
    scrobbler, _ = make(db, clock)
    await play(scrobbler, at=100.0)
    clock.advance(30)
    scrobbler.handle(Progressed(SOURCE, 930.0, DURATION))
    seen_at = clock.time()
    # The daemon is killed here: nothing else happens in this run.
    clock.advance(7200)
    restarted, outbox2 = make(db, clock)
    assert restarted.recover() == 1
    (row,) = [r for r in outbox2.rows() if r.kind is RowKind.STOP]
    assert row.watched
    assert row.body["progress"] == pytest.approx(93.0)
    assert row.created_at == seen_at  # the real time, not the restart's
    assert restarted.recover() == 0  # finished once only
    await scrobbler.aclose()
    await restarted.aclose()


async def test_a_kill_before_the_snapshot_caught_up_never_queues_the_watch_twice(
    db: Path,
) -> None:
    """The watch is queued and its POST may leave before the snapshot saying the play ended is
    written (one loop turn later). A kill in between leaves the play "in progress past the
    threshold"; the next run must know its watch was queued, however short the rewatch window
    and however long the daemon stayed down."""
    clock = ManualClock()
    scrobbler, _ = make(db, clock, window=1.0)
    await play(scrobbler, at=100.0)
    clock.advance(30)
    scrobbler.handle(Progressed(SOURCE, 930.0, DURATION))
    await asyncio.sleep(0)  # that snapshot is written
    scrobbler.handle(Ended(SOURCE, 950.0, EndReason.EOF))  # queued; its snapshot is not yet
    clock.advance(7200)  # killed here, restarted two hours later
    restarted, outbox = make(db, clock, window=1.0)
    restarted.recover()
    assert len(watched_rows(outbox)) == 1
    await scrobbler.aclose()
    await restarted.aclose()


async def test_a_play_identified_after_it_ended_is_queued_once_across_a_kill(db: Path) -> None:
    """A play that ended unidentified (an outage) is identified later: its watch is queued one
    loop turn before the snapshot that forgets the play is written. A kill in between leaves the
    play to be identified again at the next start; its watch must not be queued again, however
    short the rewatch window (the fault suite met this: a title watched once, two plays)."""
    clock = DrivenClock()
    trakt = Outage()
    conn = open_db(db)
    outbox, plays = Outbox(conn, clock), PlayStore(conn)
    policy = Policy(watched_threshold=90.0)
    scrobbler = Scrobbler(outbox, trakt, clock, policy, plays=plays, rewatch_window=1.0)
    scrobbler.handle(playing(100.0))
    await clock.settle()
    scrobbler.handle(Ended(SOURCE, 950.0, EndReason.EOF))  # ended in the outage: kept
    await clock.settle()
    [kept] = plays.load()
    assert kept.ended and kept.state.item is None
    trakt.up = True
    scrobbler.trakt_is_back()
    await clock.settle()
    assert len(watched_rows(outbox)) == 1 and plays.load() == []
    plays.save(kept)  # killed before the snapshot forgetting the play was written
    await scrobbler.aclose()

    clock.advance(7200)  # restarted two hours later
    conn2 = open_db(db)
    outbox2 = Outbox(conn2, clock)
    restarted = Scrobbler(outbox2, trakt, clock, policy, plays=PlayStore(conn2), rewatch_window=1.0)
    assert restarted.recover() == 1
    await clock.settle()
    assert trakt.tries == 3  # identified again: the play itself is not lost either
    assert len(watched_rows(outbox2)) == 1
    assert PlayStore(conn2).load() == []
    await restarted.aclose()


async def test_restart_below_the_threshold_only_closes_the_play(db: Path) -> None:
    clock = ManualClock()
    scrobbler, _ = make(db, clock)
    await play(scrobbler, at=100.0)
    scrobbler.handle(Progressed(SOURCE, 400.0, DURATION))
    restarted, outbox2 = make(db, clock)
    restarted.recover()
    (row,) = [r for r in outbox2.rows() if r.kind is RowKind.STOP]
    assert not row.watched
    assert row.body["progress"] == pytest.approx(40.0)
    await scrobbler.aclose()
    await restarted.aclose()


async def test_unidentified_files_send_nothing_and_say_why(db: Path) -> None:
    clock = ManualClock()
    scrobbler, outbox = make(db, clock)
    await play(scrobbler, path="/m/home-video.mkv")
    (now,) = scrobbler.now_playing()
    assert now.reason == "unknown"
    scrobbler.handle(Ended(SOURCE, 990.0, EndReason.EOF))
    assert outbox.rows() == []
    await scrobbler.aclose()


async def test_the_same_item_reappearing_continues_the_play(db: Path) -> None:
    """An adapter that reconnects reports PLAY again: that is not a new play."""
    clock = ManualClock()
    scrobbler, outbox = make(db, clock)
    await play(scrobbler, at=100.0)
    first = [r.play_id for r in outbox.rows()]
    scrobbler.handle(playing(120.0))
    assert [r.play_id for r in outbox.rows()] == first
    assert [r.kind for r in outbox.rows()] == [RowKind.START]
    await scrobbler.aclose()


class Outage:
    """Identification that says "try later" until `up`; counts the tries."""

    def __init__(self) -> None:
        self.up = False
        self.tries = 0

    async def identify(self, media: MediaInfo) -> Found:
        self.tries += 1
        if not self.up:
            return Found(None, "Trakt unreachable", retry_later=True)
        return Found(MOVIE if media.path == "/m/matrix.mkv" else None, "unknown")


async def test_trakt_back_cuts_identification_waits_short(db: Path) -> None:
    clock = DrivenClock()
    trakt = Outage()
    conn = open_db(db)
    outbox = Outbox(conn, clock)
    scrobbler = Scrobbler(outbox, trakt, clock, Policy(), identify_retry=60.0)
    scrobbler.handle(playing(100.0))
    await clock.settle()
    assert trakt.tries == 1 and clock.sleeping == [clock.mono + 2.0]  # waiting to retry
    scrobbler.handle(Ended(SOURCE, 950.0, EndReason.EOF))  # ended in the outage: kept
    trakt.up = True
    scrobbler.trakt_is_back()  # no clock moved: the wait ends at once
    await clock.settle()
    assert trakt.tries == 2
    (watch,) = watched_rows(outbox)
    assert watch == clock.wall  # when it ended: no time passed
    assert scrobbler.sources == 0  # nothing left waiting
    await scrobbler.aclose()


async def test_ended_sources_are_forgotten(db: Path) -> None:
    """5000 plays from distinct Plex player ids leave no per-source state behind."""
    clock = ManualClock()
    scrobbler, outbox = make(db, clock)
    for n in range(5000):
        source = f"plex:player-{n}"
        scrobbler.handle(Playing(source, MediaInfo(path="/m/other.mkv", duration=DURATION), 0.0))
        scrobbler.handle(Ended(source, 10.0, EndReason.STOPPED))
    await asyncio.sleep(0)
    assert scrobbler.sources == 0
    assert scrobbler.now_playing() == []
    assert outbox.rows() == []
    await scrobbler.aclose()


async def test_log_lines_name_an_mpv_socket_by_its_file_name(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The adapter names the whole path once, when it connects; each play line does not."""
    caplog.set_level(logging.INFO, logger="trakt_scrobbled.scrobbler")
    clock = ManualClock()
    scrobbler, _ = make(db, clock)
    source = "mpv:/run/user/1000/trakt-scrobbled/mpv/living-room.sock"
    scrobbler.handle(Playing(source, MediaInfo(path="/m/matrix.mkv", duration=DURATION), 0.0))
    async with asyncio.timeout(2):
        while scrobbler.now_playing()[0].reason == "identifying":  # noqa: ASYNC110 - one task hop
            await asyncio.sleep(0)
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("mpv:living-room.sock: playing ") for line in lines), lines
    assert not any("/run/user/1000" in line for line in lines), lines
    await scrobbler.aclose()


def household(
    db: Path, clock: ManualClock, identifier: KnownItems | Outage | None = None
) -> tuple[Scrobbler, dict[str, Outbox]]:
    """Alice (the default) and Bob, routed by the Plex account the player names."""
    conn = open_db(db)
    accounts = (
        AccountConfig(name="alice", default=True, plex=("Alice",)),
        AccountConfig(name="bob", plex=("Bob",)),
    )
    outboxes = {a.name: Outbox(conn, clock, account=a.name) for a in accounts}

    def lane(source: str, user: str | None, user_id: str | None) -> tuple[Outbox | None, str]:
        found = route(accounts, source, user, user_id)
        return (outboxes[found.account] if found.account else None), found.reason

    scrobbler = Scrobbler(
        outboxes["alice"],
        identifier or KnownItems({"/m/matrix.mkv": MOVIE}),
        clock,
        Policy(watched_threshold=90.0),
        plays=PlayStore(conn),
        lane=lane,
    )
    return scrobbler, outboxes


@pytest.mark.parametrize("hold", [0.0, 30.0])
async def test_a_plex_play_held_over_a_restart_stays_on_its_users_account(
    db: Path, hold: float
) -> None:
    """The play's user is kept with its snapshot: a restart finishes (or continues) Bob's play
    on Bob's account, never on the default one."""
    clock = ManualClock()
    scrobbler, _ = household(db, clock)
    source = "plex:tv-uuid"
    media = MediaInfo(path="/m/matrix.mkv", duration=DURATION)
    scrobbler.handle(Playing(source, media, 100.0, DURATION, user="Bob", user_id="12"))
    async with asyncio.timeout(2):
        while scrobbler.now_playing()[0].reason == "identifying":  # noqa: ASYNC110 - one task hop
            await asyncio.sleep(0)
    clock.advance(30)
    scrobbler.handle(Progressed(source, 930.0, DURATION))
    # Killed here. The next run recovers the play: at once, or after a hold in which Plex
    # reports the same play again.
    restarted, outboxes = household(db, clock)
    assert restarted.recover(hold) == 1
    if hold:
        restarted.handle(Playing(source, media, 940.0, DURATION, user="Bob", user_id="12"))
        restarted.handle(Ended(source, 950.0, EndReason.STOPPED))
    assert outboxes["alice"].rows() == []
    stops = [r for r in outboxes["bob"].rows() if r.kind is RowKind.STOP]
    assert [r.watched for r in stops] == [True]
    await scrobbler.aclose()
    await restarted.aclose()


async def test_an_ended_play_awaiting_identification_keeps_its_users_account(db: Path) -> None:
    """Trakt was down while Bob watched: the play ended unidentified, the daemon restarted, and
    the play identified later lands on Bob's account."""
    clock = ManualClock()
    scrobbler, _ = household(db, clock, Outage())
    source = "plex:tv-uuid"
    media = MediaInfo(path="/m/matrix.mkv", duration=DURATION)
    scrobbler.handle(Playing(source, media, 100.0, DURATION, user="Bob"))
    await asyncio.sleep(0)
    clock.advance(900)
    scrobbler.handle(Ended(source, 950.0, EndReason.EOF))  # ended in the outage: kept
    await scrobbler.aclose()
    restarted, outboxes = household(db, clock)
    assert restarted.recover() == 1
    async with asyncio.timeout(2):
        while not outboxes["bob"].rows():  # noqa: ASYNC110 - identification is one task hop
            await asyncio.sleep(0)
    assert outboxes["alice"].rows() == []
    assert [r.watched for r in outboxes["bob"].rows() if r.kind is RowKind.STOP] == [True]
    await restarted.aclose()


def test_snapshots_keep_the_user_and_read_earlier_ones_without_it(db: Path) -> None:
    conn = open_db(db)
    store = PlayStore(conn)
    state = SessionState(
        play_id="p1",
        items=(MOVIE,),
        phase=Phase.PLAYING,
        position=10.0,
        position_at=0.0,
        duration=DURATION,
        speed=1.0,
        reported=Reported.STARTED,
    )
    store.save(Snapshot("plex:a", state, 1.0, user="Bob", user_id="12"))
    (snap,) = store.load()
    assert (snap.user, snap.user_id) == ("Bob", "12")
    data = json.loads(conn.execute("SELECT data FROM plays").fetchone()[0])
    # A snapshot of the previous version has no user.
    del data["user"], data["user_id"]
    conn.execute("UPDATE plays SET data = ?", (json.dumps(data),))
    (snap,) = store.load()
    assert (snap.user, snap.user_id) == (None, None)
    # A user that is not text is unreadable: dropped, as any unreadable snapshot.
    data["user"] = ["Bob"]
    conn.execute("UPDATE plays SET data = ?", (json.dumps(data),))
    assert store.load() == []
