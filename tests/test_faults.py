"""Never lose a watch, never invent one: durability under faults, proven.

The first tests pin the corner cases one by one, in-process (real SQLite, the fake Trakt over
real HTTP). The last one is a seeded run of real mpv players, the daemon as a subprocess that is
SIGKILLed and restarted at random points, and a fake Trakt failing in every way it can; at the
end every watch is in Trakt's history exactly once, at its real time, and nothing else is.
The one moment a kill is kept from is between mpv reaching the end and the daemon recording it:
no daemon could know of that watch (mpv is idle afterwards and tells nothing); see `KillGate`.

`FAULT_SEED=N pytest tests/test_faults.py -s` replays one run's script (which plays, which
faults, when the kills come); the seed is printed with the run's summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import assert_never

import pytest

from tests.daemon import Daemon, Home, log_in, queue_counts
from tests.fake_trakt import Episode, FakeTrakt, FaultKind, RecordedRequest
from tests.fake_trakt.catalogue import item_key
from tests.realplayers import MediaFiles, MpvControl, MpvLauncher, MpvProcess
from trakt_scrobbled.clock import SystemClock
from trakt_scrobbled.events import (
    Ended,
    EndReason,
    Ids,
    MediaInfo,
    MediaType,
    Paused,
    PlayerEvent,
    Playing,
    Progressed,
    Resumed,
    Scrobble,
    ScrobbleVerb,
    Seeked,
    TraktItem,
)
from trakt_scrobbled.outbox import Outbox, OutboxRow
from trakt_scrobbled.playstate import PlayStore
from trakt_scrobbled.scrobbler import Scrobbler
from trakt_scrobbled.sender import Sender
from trakt_scrobbled.session import Policy
from trakt_scrobbled.store import open_db
from trakt_scrobbled.trakt.auth import Auth, Token, TokenStore
from trakt_scrobbled.trakt.client import TraktClient
from trakt_scrobbled.trakt.ratelimit import PostRateLimiter

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-secret"

# --- the scrobbler: plays that outlive a run, plays that end before they are known ------------

DURATION = 1000.0
PATH = "/films/Amber.Harbor.1961.mkv"
AMBER = TraktItem(MediaType.MOVIE, Ids(trakt=61), title="Amber Harbor", year=1961)
SOURCE = "mpv:/tmp/faults.sock"


@dataclass(frozen=True)
class Answer:
    item: TraktItem | None
    reason: str | None = None
    retry_later: bool = False
    episodes: tuple[int, ...] = ()


class Trakt:
    """Identification by path while `reachable`, "unreachable, try later" otherwise."""

    def __init__(self, reachable: bool = True) -> None:
        self.reachable = reachable
        self.asked = 0

    async def identify(self, media: MediaInfo) -> Answer:
        self.asked += 1
        if not self.reachable:
            return Answer(None, "Trakt unreachable", retry_later=True)
        return Answer(AMBER if media.path == PATH else None, "not found")


class Run:
    """One daemon run's scrobbler on the shared database; `kill` drops it without a goodbye."""

    def __init__(self, db: Path, trakt: Trakt) -> None:
        self.conn = open_db(db)
        self.outbox = Outbox(self.conn, SystemClock())
        self.plays = PlayStore(self.conn)
        self.scrobbler = Scrobbler(
            self.outbox,
            trakt,
            SystemClock(),
            Policy(),
            plays=self.plays,
            rewatch_window=1.0,
            identify_retry=0.02,
        )

    def play(self, position: float, path: str = PATH) -> None:
        media = MediaInfo(path=path, duration=DURATION)
        self.scrobbler.handle(Playing(SOURCE, media, position, DURATION))

    def event(self, event: PlayerEvent) -> None:
        self.scrobbler.handle(event)

    def watches(self) -> list[OutboxRow]:
        return [r for r in self.outbox.rows() if r.watched]

    async def kill(self) -> None:
        """What a SIGKILL leaves: the database as it is (tasks stop, nothing is finished)."""
        await self.scrobbler.aclose()
        self.conn.close()


async def until(condition: Callable[[], bool], limit: float = 5.0) -> None:
    """Bounded wait for state a task writes (SQLite rows) that signals nothing."""
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110 - no event exists for a SQLite row
            await asyncio.sleep(0.01)


async def test_a_play_that_ends_unidentified_in_an_outage_is_recorded_once_trakt_is_back(
    tmp_path: Path,
) -> None:
    trakt = Trakt(reachable=False)
    run = Run(tmp_path / "state.db", trakt)
    run.play(10.0)
    await until(lambda: trakt.asked >= 2)  # tried, and tried again
    run.event(Ended(SOURCE, DURATION, EndReason.EOF))
    ended = time.time()
    await until(lambda: trakt.asked >= 4)
    assert run.watches() == []  # nothing can be sent without knowing what it was
    trakt.reachable = True
    await until(lambda: len(run.watches()) == 1)
    (watch,) = run.watches()
    assert watch.body["movie"]["ids"] == {"trakt": 61}
    assert abs(watch.created_at - ended) < 0.5  # the real end, not when it was identified
    assert run.plays.load() == []
    await run.kill()


async def test_a_play_that_ended_unidentified_survives_a_kill(tmp_path: Path) -> None:
    trakt = Trakt(reachable=False)
    first = Run(tmp_path / "state.db", trakt)
    first.play(10.0)
    first.event(Ended(SOURCE, 950.0, EndReason.EOF))
    ended = time.time()
    await first.kill()
    trakt.reachable = True
    second = Run(tmp_path / "state.db", trakt)
    assert second.scrobbler.recover(hold=5.0) == 1
    await until(lambda: len(second.watches()) == 1)
    assert abs(second.watches()[0].created_at - ended) < 0.5
    assert second.watches()[0].body["progress"] == 95.0
    await second.kill()


async def test_a_play_still_going_after_a_kill_goes_on_as_the_same_play(tmp_path: Path) -> None:
    """Killed after the play crossed the threshold, mpv plays on: one watch, at the real end."""
    trakt = Trakt()
    first = Run(tmp_path / "state.db", trakt)
    first.play(100.0)
    await until(lambda: bool(first.outbox.rows()))  # identified and started
    first.event(Seeked(SOURCE, 850.0))  # past the threshold, still playing
    (play_id,) = {r.play_id for r in first.outbox.rows()}
    await first.kill()

    second = Run(tmp_path / "state.db", trakt)
    second.scrobbler.recover(hold=5.0)
    assert second.watches() == []  # not finished while its player may come back
    second.play(900.0)  # the adapter reconnects: mpv plays on
    second.event(Ended(SOURCE, DURATION, EndReason.EOF))
    ended = time.time()
    (watch,) = second.watches()
    assert watch.play_id == play_id
    assert abs(watch.created_at - ended) < 0.5
    await until(lambda: second.plays.load() == [])  # written once the POST left
    await second.kill()


async def test_a_play_whose_player_does_not_come_back_ends_where_it_was_last_seen(
    tmp_path: Path,
) -> None:
    trakt = Trakt()
    first = Run(tmp_path / "state.db", trakt)
    first.play(100.0)
    await until(lambda: bool(first.outbox.rows()))
    first.event(Paused(SOURCE, 900.0))  # a watch, recorded at the pause
    first.event(Resumed(SOURCE, 900.0))
    first.event(Progressed(SOURCE, 950.0, DURATION))
    seen = time.time()
    await first.kill()

    second = Run(tmp_path / "state.db", trakt)
    second.scrobbler.recover(hold=0.2)
    await until(lambda: second.plays.load() == [])
    assert len(second.watches()) == 1  # the pause's, not a second one at the restart
    assert second.watches()[0].created_at < seen
    await second.kill()


async def test_another_file_on_the_same_player_first_finishes_the_held_play(
    tmp_path: Path,
) -> None:
    trakt = Trakt()
    first = Run(tmp_path / "state.db", trakt)
    first.play(100.0)
    await until(lambda: bool(first.outbox.rows()))
    first.event(Progressed(SOURCE, 880.0, DURATION))
    seen = time.time()
    await first.kill()

    second = Run(tmp_path / "state.db", trakt)
    second.scrobbler.recover(hold=5.0)
    second.play(0.0, path="/films/Other.2001.mkv")
    (watch,) = second.watches()
    assert seen - 0.5 < watch.created_at <= seen
    await second.kill()


# --- the sender: answers lost, then more failures --------------------------------------------


@dataclass
class SenderRig:
    fake: FakeTrakt
    outbox: Outbox
    item: TraktItem


@contextlib.asynccontextmanager
async def sender_rig(
    tmp_path: Path, *, history_after: float, limited: bool
) -> AsyncIterator[SenderRig]:
    clock = SystemClock()
    with FakeTrakt() as fake:
        movie = fake.add_movie("Amber Harbor", 1961)
        item = TraktItem(MediaType.MOVIE, Ids(trakt=movie.ids.trakt), title=movie.title)
        store = TokenStore(tmp_path / "token.json")
        pair = fake.issue_token()
        store.save(Token(pair.access_token, pair.refresh_token, pair.created_at + 86400))
        conn = open_db(tmp_path / "state.db")
        outbox = Outbox(conn, clock)
        limiter = PostRateLimiter(clock)
        auth = Auth(store, clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        client = TraktClient(fake.url, CLIENT_ID, limiter, token=auth.access_token, timeout=2)
        sender = Sender(
            outbox,
            client,
            auth,
            clock,
            rng=random.Random(1),
            backoff_base=1.0,
            backoff_cap=1.0,
            busy_delay=0.2,
            history_after=history_after,
            limiter=limiter if limited else None,
            restart_gap=0.0,
        )
        task = asyncio.create_task(sender.run())
        try:
            yield SenderRig(fake, outbox, item)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await client.aclose()
            conn.close()


def watched_stop(item: TraktItem, play: str = "p") -> Scrobble:
    return Scrobble(ScrobbleVerb.STOP, play, item, 100.0, watched=True)


async def test_an_answer_lost_stays_unsure_through_later_failures(tmp_path: Path) -> None:
    """Trakt took the stop but the answer was lost; the history look-up then fails: the entry
    must still be looked up again rather than sent blindly (Trakt keeps duplicates)."""
    async with sender_rig(tmp_path, history_after=0.3, limited=False) as rig:
        rig.fake.drop_after_processing_next(1, path_prefix="/scrobble/stop")
        rig.fake.fail_next(2, 503, path_prefix="/sync/history", method="GET")
        rig.outbox.enqueue(watched_stop(rig.item))
        await until(lambda: rig.outbox.counts().pending == 0, limit=10)
        assert len(rig.fake.history()) == 1
        assert rig.fake.requests("/sync/history")[-1].method == "GET"  # found, not re-sent
        assert not [r for r in rig.fake.requests("/sync/history") if r.method == "POST"]


async def test_a_retry_after_does_not_date_a_watch_late(tmp_path: Path) -> None:
    """A stop held back by a Retry-After goes to the history with its real time; sent as a
    scrobble after the wait, Trakt would date it when it arrived."""
    async with sender_rig(tmp_path, history_after=1.0, limited=True) as rig:
        rig.fake.fail_next(1, 429, path_prefix="/scrobble", retry_after=3)
        ended = time.time()
        rig.outbox.enqueue(watched_stop(rig.item))
        await until(lambda: rig.outbox.counts().pending == 0, limit=10)
        (entry,) = rig.fake.history()
        assert abs(entry.watched_at.timestamp() - ended) < 0.1
        assert [r.status for r in rig.fake.requests("/scrobble")] == [429]


# --- the seeded run ---------------------------------------------------------------------------

SEED = int(os.environ.get("FAULT_SEED", "20261130"))
PLAYERS = 3
PLAYS_PER_PLAYER = 11
MOVIES = (
    "Amber Harbor", "Brass Lantern", "Cedar Hollow", "Dusk Orchard", "Ember Valley",
    "Frost Meridian", "Granite Tide", "Hazel Quarry", "Iron Willow", "Jade Caravan",
    "Kestrel Moon", "Linen Atlas", "Marble Fern", "Nettle Bay", "Opal Canyon", "Pebble Forge",
    "Quartz Lagoon", "Rowan Summit", "Saffron Gate", "Thistle Road", "Umber Isle",
    "Velvet Pine", "Walnut Creek", "Yarrow Peak", "Zinc Comet", "Birch Signal",
)  # fmt: skip
SHOW = "Quiet Meadow"
EPISODES = 12
LENGTH = 150.0
"""Seconds of the test media; at speed 100 it lasts 1.5 s."""
END_SLACK = 2.0
"""How far a watch's `watched_at` may be from when mpv really reached the end."""
POST_SPACING = 1.0
LINGER = 3.0
"""Seconds a play waits past the threshold for a kill."""
FAULTS_UNTIL = 45.0
"""Seconds into the run after which no new fault is armed."""


@dataclass(frozen=True, slots=True)
class Title:
    file_name: str
    label: str
    """How the daemon names the item in its log (`TraktItem.describe`)."""
    key: tuple[str, int]
    """The item in the fake's history (`item_key`)."""


@dataclass(frozen=True, slots=True)
class PlaySpec:
    title: Title
    watched: bool
    """Played to the end; otherwise stopped at `stop_at`, under the threshold."""
    start: float | None
    cruise_speed: float
    cruise_to: float
    pause_for: float | None
    seek_to: float | None
    stop_at: float
    linger: bool = False
    """Watched plays: wait past the threshold, still playing, for a kill (`PAST_THRESHOLD`)."""


class Injected(StrEnum):
    SERVER_ERROR = "500"
    EDGE_ERROR = "52x"
    BUSY = "50x"
    """502–504: the sender then waits 30 s."""
    DROP = "drop"
    ANSWER_LOST = "drop_after"
    SLOW = "slow"
    RATE_LIMITED = "429"
    EDGE_429 = "429 html"
    """No Retry-After: the client holds POSTs back 30 s."""


class KillKind(StrEnum):
    RANDOM = "random"
    STOP_ANSWER_LOST = "stop-answer-lost"
    """Right after Trakt took a watched stop whose answer never came back."""
    HISTORY_ANSWER_LOST = "history-answer-lost"
    """Right after Trakt took a history batch whose answer never came back."""
    PAST_THRESHOLD = "past-threshold"
    """While a play is past the threshold and mpv plays on: it must not count twice."""


@dataclass(frozen=True, slots=True)
class FaultSpec:
    at: float
    kind: Injected
    count: int = 1
    status: int = 0
    path: str | None = None
    retry_after: float | None = None
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class KillSpec:
    at: float
    kind: KillKind


@dataclass(frozen=True, slots=True)
class Plan:
    plays: tuple[tuple[PlaySpec, ...], ...]
    """One sequence per mpv."""
    faults: tuple[FaultSpec, ...]
    kills: tuple[KillSpec, ...]
    outage: tuple[float, float, int | None]
    """(start, length, status: None drops every connection)."""
    spares: tuple[PlaySpec, ...]
    """Last watched plays, by `KillKind`: for the lost answers the run did not meet."""


def catalogue(fake: FakeTrakt, folder: Path, media: MediaFiles) -> list[Title]:
    """Every title in the fake and on disk (hard links to the one test file)."""
    titles: list[Title] = []
    for n, name in enumerate(MOVIES):
        movie = fake.add_movie(name, 1961 + n)
        file_name = f"{name.replace(' ', '.')}.{1961 + n}.1080p.BluRay.x264.mkv"
        titles.append(Title(file_name, f"{name} ({1961 + n})", item_key(movie)))
    show = fake.add_show(SHOW, 2015, episodes=[Episode(1, n) for n in range(1, EPISODES + 1)])
    for n in range(1, EPISODES + 1):
        file_name = f"{SHOW.replace(' ', '.')}.S01E{n:02d}.720p.WEB.mkv"
        titles.append(Title(file_name, f"{SHOW} S01E{n:02d}", item_key(show.episode(1, n))))
    for title in titles:
        target = folder / title.file_name
        try:
            os.link(media.movie, target)
        except OSError:
            target.write_bytes(media.movie.read_bytes())
    return titles


def make_plan(seed: int, titles: list[Title]) -> Plan:
    rng = random.Random(seed)
    chosen = rng.sample(titles, PLAYERS * PLAYS_PER_PLAYER + len(KillKind))
    spares = tuple(
        PlaySpec(
            title=chosen.pop(),
            watched=True,
            start=None,
            cruise_speed=5.0,
            cruise_to=10.0,
            pause_for=None,
            seek_to=None,
            stop_at=LENGTH,
            linger=kind is KillKind.PAST_THRESHOLD,
        )
        for kind in KillKind
    )
    plays = []
    for player in range(PLAYERS):
        specs = []
        for title in chosen[player * PLAYS_PER_PLAYER : (player + 1) * PLAYS_PER_PLAYER]:
            watched = rng.random() < 0.7
            start = rng.choice([None, rng.uniform(3, 30)])
            stop_at = rng.uniform(0.25, 0.55) * LENGTH
            cruise_to = (start or 0.0) + rng.uniform(6, 18)
            seek = rng.random() < 0.35
            seek_to = rng.uniform(15, 0.65 * LENGTH if watched else stop_at - 5) if seek else None
            specs.append(
                PlaySpec(
                    title=title,
                    watched=watched,
                    start=start,
                    cruise_speed=rng.uniform(3, 8),
                    cruise_to=min(cruise_to, stop_at - 2) if not watched else cruise_to,
                    pause_for=rng.uniform(0.3, 1.2) if rng.random() < 0.35 else None,
                    seek_to=seek_to,
                    stop_at=stop_at,
                    linger=watched and rng.random() < 0.15,
                )
            )
        plays.append(tuple(specs))

    outage_at = rng.uniform(14, 24)
    outage = (outage_at, rng.uniform(8, 12), rng.choice([None, None, 500, 520]))
    # Every kind once, at a time of the seed's choosing (the two that may hold the sender back
    # 30 s first, so that the run stays short), then more of the cheap ones.
    slow = (Injected.BUSY, Injected.EDGE_429)
    cheap = [k for k in Injected if k not in slow]
    kinds = [(rng.uniform(3, 6), k) for k in slow]
    kinds += [(rng.uniform(5, 40), k) for k in cheap]
    at = rng.uniform(5, 7)
    while at < FAULTS_UNTIL:
        kinds.append((at, rng.choices(cheap, weights=[1, 2, 2, 2, 1, 2])[0]))
        at += rng.uniform(2.0, 4.5)
    faults = [_fault(rng, at, kind) for at, kind in sorted(kinds)]
    kills = [KillSpec(rng.uniform(4, 44), KillKind.RANDOM) for _ in range(4)]
    kills.append(KillSpec(rng.uniform(1, 2.5), KillKind.STOP_ANSWER_LOST))
    kills.append(KillSpec(rng.uniform(4, 30), KillKind.PAST_THRESHOLD))
    # Armed when the outage begins, met by the first batch after it.
    kills.append(KillSpec(outage_at, KillKind.HISTORY_ANSWER_LOST))
    kills.sort(key=lambda k: k.at)
    return Plan(tuple(plays), tuple(faults), tuple(kills), outage, spares)


def _fault(rng: random.Random, at: float, kind: Injected) -> FaultSpec:
    path = rng.choice([None, "/scrobble", "/sync/history", "/search"])
    match kind:
        case Injected.SERVER_ERROR:
            return FaultSpec(at, kind, rng.randint(1, 3), 500, path)
        case Injected.EDGE_ERROR:
            return FaultSpec(at, kind, rng.randint(1, 3), rng.choice([520, 521, 522]), path)
        case Injected.BUSY:
            return FaultSpec(at, kind, 1, rng.choice([502, 503, 504]), path)
        case Injected.DROP:
            return FaultSpec(at, kind, rng.randint(1, 2), path=path)
        case Injected.ANSWER_LOST:
            return FaultSpec(at, kind, path=path or "/scrobble")
        case Injected.SLOW:  # answered late, well within the client's timeout
            return FaultSpec(at, kind, path=path, seconds=rng.uniform(0.2, 0.5))
        case Injected.RATE_LIMITED:
            path = rng.choice([None, "/scrobble", "/sync"])
            return FaultSpec(at, kind, rng.randint(2, 4), 429, path, retry_after=rng.randint(1, 3))
        case Injected.EDGE_429:
            return FaultSpec(at, kind, 1, 429, rng.choice(["/scrobble", "/sync"]))
    assert_never(kind)


class Abort(Exception):
    """Another thread of the run failed; this one stops."""


class KillGate:
    """A kill waits until no play is in its last stretch; a last stretch waits out a kill.

    From the speed-up to the end until the daemon has recorded the end, a kill would lose a
    watch no daemon can know of (mpv is idle afterwards, and says nothing of what it played).
    """

    def __init__(self, abort: threading.Event) -> None:
        self._cond = threading.Condition()
        self._finals = 0
        self._killing = False
        self._abort = abort

    def _wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self._abort.is_set():
                raise Abort
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout:g} s for {what}")
            self._cond.wait(0.1)

    @contextlib.contextmanager
    def final_stretch(self) -> Iterator[None]:
        with self._cond:
            self._wait(lambda: not self._killing, 30, "a kill and restart to end")
            self._finals += 1
        try:
            yield
        finally:
            with self._cond:
                self._finals -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def kill(self) -> Iterator[None]:
        with self._cond:
            self._killing = True
            try:
                self._wait(lambda: self._finals == 0, 30, "plays to finish their last stretch")
            except BaseException:
                self._killing = False
                raise
        try:
            yield
        finally:
            with self._cond:
                self._killing = False
                self._cond.notify_all()


@dataclass(slots=True)
class Outcome:
    spec: PlaySpec
    ended_at: float | None = None
    """Wall clock when the test saw mpv reach the end (watched plays)."""


@dataclass
class Scenario:
    home: Home
    fake: FakeTrakt
    plan: Plan
    folder: Path
    started: float = field(default_factory=time.monotonic)
    abort: threading.Event = field(default_factory=threading.Event)
    players_done: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    kills: list[str] = field(default_factory=list)
    generation: int = 0
    daemon: Daemon | None = None
    lingering: int = 0
    """Plays waiting past the threshold for a kill."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.gate = KillGate(self.abort)

    # --- the daemon, restarted after each kill ----------------------------------------------

    def start_daemon(self) -> Daemon:
        daemon = Daemon(self.home, name=f"daemon{self.generation}").start()
        daemon.wait_for_log("ready", timeout=20)
        with self.lock:
            self.daemon = daemon
        return daemon

    def current(self) -> Daemon:
        with self.lock:
            assert self.daemon is not None
            return self.daemon

    def wait_log(self, pattern: str, *, since: int = 0, timeout: float = 20.0) -> None:
        """In the running daemon's log; a kill may not come meanwhile (callers hold the gate)."""
        self.current().wait_for_log(pattern, timeout=timeout, since=since)

    def pause(self, seconds: float) -> None:
        """The script's own pace (the user waits); ends early only when the run is aborted."""
        if self.abort.wait(seconds):
            raise Abort

    def until_time(self, at: float) -> None:
        self.pause(max(0.0, self.started + at - time.monotonic()))

    # --- threads ----------------------------------------------------------------------------

    def guarded(self, fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except Abort:
                pass
            except BaseException as err:
                self.errors.append(err)
                self.abort.set()

        return run

    def player(self, mpv: MpvProcess, specs: tuple[PlaySpec, ...]) -> None:
        for spec in specs:
            outcome = self.play(mpv.control, spec)
            with self.lock:
                self.outcomes.append(outcome)

    def play(self, mpv: MpvControl, spec: PlaySpec) -> Outcome:
        def at_least(target: float) -> Callable[[object], bool]:
            return lambda v: isinstance(v, int | float) and v >= target

        mpv.set("speed", 1.0)
        mpv.loadfile(self.folder / spec.title.file_name, start=spec.start)
        mpv.wait_for("time-pos", lambda v: isinstance(v, int | float), timeout=10)
        mpv.set("speed", spec.cruise_speed)
        mpv.wait_for("time-pos", at_least(spec.cruise_to), timeout=20)
        if spec.pause_for is not None:
            mpv.pause()
            self.pause(spec.pause_for)
            mpv.resume()
        if spec.seek_to is not None:
            mpv.seek(spec.seek_to)
        if not spec.watched:
            mpv.set("speed", 20.0)
            mpv.wait_for("time-pos", at_least(spec.stop_at), timeout=20)
            mpv.stop()
            mpv.wait_for("idle-active", lambda v: v is True, timeout=10)
            return Outcome(spec)
        mpv.set("speed", 1.0)  # waiting for the gate must not carry the play to its end
        if spec.linger:
            self.linger(mpv)
        name = re.escape(spec.title.file_name)
        with self.gate.final_stretch():
            self.wait_log(rf"(playing {name}|{name} goes on)")  # this daemon knows the play
            mark = self.current().mark()
            mpv.set("speed", 100.0)
            mpv.wait_for("idle-active", lambda v: v is True, timeout=20)
            ended = time.time()
            label = re.escape(spec.title.label)
            self.wait_log(
                rf"(queued watched {label} |{name} ended before it could be identified)",
                since=mark,
            )
        return Outcome(spec, ended)

    def faults(self) -> None:
        fake, (outage_at, outage_len, outage_status) = self.fake, self.plan.outage
        timeline: list[tuple[float, Callable[[], None]]] = [
            (outage_at, lambda: fake.set_outage(True, status=outage_status)),
            (outage_at + outage_len, lambda: fake.set_outage(False)),
        ]
        timeline += [(f.at, lambda f=f: self.inject(f)) for f in self.plan.faults]  # type: ignore[misc]
        timeline.append((FAULTS_UNTIL + 2, fake.clear_faults))  # what was not met by then
        for at, action in sorted(timeline, key=lambda t: t[0]):
            self.until_time(at)
            if self.players_done.is_set():
                break
            action()
        fake.set_outage(False)

    def inject(self, f: FaultSpec) -> None:
        fake = self.fake
        match f.kind:
            case Injected.SERVER_ERROR | Injected.EDGE_ERROR | Injected.BUSY:
                fake.fail_next(f.count, f.status, path_prefix=f.path)
            case Injected.DROP:
                fake.drop_next(f.count, path_prefix=f.path)
            case Injected.ANSWER_LOST:
                fake.drop_after_processing_next(f.count, path_prefix=f.path)
            case Injected.SLOW:
                fake.delay_next(f.count, f.seconds, path_prefix=f.path)
            case Injected.RATE_LIMITED:
                fake.fail_next(f.count, 429, path_prefix=f.path, retry_after=f.retry_after)
            case Injected.EDGE_429:
                fake.fail_next(f.count, 429, path_prefix=f.path, html=True)

    def killer(self) -> None:
        """Random kills at their times; targeted ones once their moment has come."""
        pending = list(self.plan.kills)
        armed: dict[KillKind, tuple[float, float]] = {}  # kind -> (when armed, give up at)
        while (pending or armed) and not self.players_done.is_set():
            now = time.monotonic() - self.started
            for kill in [k for k in pending if k.at <= now]:
                pending.remove(kill)
                if kill.kind is KillKind.RANDOM:
                    self.kill(kill.kind)
                else:
                    armed[kill.kind] = (self.arm(kill.kind), time.monotonic() + 45)
            for kind, (since, give_up) in list(armed.items()):
                hit = self.moment(kind, since)
                if hit is True:
                    del armed[kind]
                    self.kill(kind)
                elif hit is False:  # a pause's stop, no watch: arm again
                    armed[kind] = (self.arm(kind), give_up)
                elif time.monotonic() > give_up:
                    del armed[kind]
                    self.kills.append(f"{kind} (not met)")
            self.pause(0.02)
        self.kills += [f"{kind} (not met)" for kind in armed]

    def kill(self, kind: str) -> None:
        with self.gate.kill():
            self.current().kill()
            unsure = self.unsure_rows()
            with self.lock:
                self.generation += 1
            self.start_daemon()
        self.kills.append(kind + (f" ({unsure} unsure)" if unsure else ""))

    def arm(self, kind: KillKind) -> float:
        """A lost answer: the next watched stop, or history batch, is taken unanswered."""
        since = time.monotonic()
        if kind in (KillKind.STOP_ANSWER_LOST, KillKind.HISTORY_ANSWER_LOST):
            path = self._lost_path(kind)
            self.fake.drop_after_processing_next(1, path_prefix=path, method="POST")
        return since

    def moment(self, kind: KillKind, since: float) -> bool | None:
        """Whether a targeted kill's moment came; None not yet, False a miss (arm again)."""
        if kind is KillKind.PAST_THRESHOLD:
            with self.lock:
                return True if self.lingering else None
        path = self._lost_path(kind)
        for r in self.fake.requests(path):
            if r.fault is FaultKind.DROP_AFTER and r.method == "POST" and r.monotonic >= since:
                return path == "/sync/history" or r.json.get("progress", 0) >= 80
        return None

    @staticmethod
    def _lost_path(kind: KillKind) -> str:
        return "/scrobble/stop" if kind is KillKind.STOP_ANSWER_LOST else "/sync/history"

    def linger(self, mpv: MpvControl) -> None:
        """Past the threshold, mpv playing on, until a kill has come (or a while has passed)."""
        mpv.seek(0.85 * LENGTH)
        mpv.wait_for("time-pos", lambda v: isinstance(v, int | float) and v >= 0.84 * LENGTH)
        self.pause(0.5)  # the daemon has seen the seek: its snapshot is past the threshold
        with self.lock:
            generation = self.generation
            self.lingering += 1
        try:
            deadline = time.monotonic() + LINGER
            while self.generation == generation and time.monotonic() < deadline:
                self.pause(0.02)
        finally:
            with self.lock:
                self.lingering -= 1

    def met(self, kind: KillKind) -> bool:
        return any(k.startswith(kind) and "not met" not in k for k in self.kills)

    def epilogue(self, mpv: MpvProcess) -> None:
        """For each targeted kill the run did not meet, one more watch meets it.

        A watched stop Trakt took unanswered must not become a second play when resent (a
        409, or found by the history look-up); nor a history batch Trakt took unanswered
        (found by the look-up: Trakt keeps duplicates of history); nor a play past the
        threshold when the daemon died while mpv played on.
        """
        for kind, spec in zip(KillKind, self.plan.spares, strict=True):
            if kind is KillKind.RANDOM or self.met(kind):
                continue
            since = self.arm(kind)
            if kind is KillKind.HISTORY_ANSWER_LOST:
                self.fake.fail_next(1, 500, path_prefix="/scrobble/stop")  # late: to history
            killer = threading.Thread(target=self.guarded(lambda: self.kill_at(kind, since)))  # noqa: B023 - joined below
            killer.start()
            self.outcomes.append(self.play(mpv.control, spec))
            killer.join(30)
            if self.errors:
                raise self.errors[0]
            self.drain()

    def kill_at(self, kind: KillKind, since: float) -> None:
        deadline = time.monotonic() + 25
        while (hit := self.moment(kind, since)) is None and time.monotonic() < deadline:
            self.pause(0.02)
        if hit:
            self.kill(f"{kind} in the epilogue")
        else:
            self.kills.append(f"{kind} (not met in the epilogue)")

    def drain(self) -> None:
        """Faults off, then until nothing is left to send."""
        self.fake.clear_faults()
        self.fake.set_outage(False)
        self.current().wait_until(self.drained, timeout=60)

    def drained(self) -> bool:
        """Nothing queued and no play open (nor awaiting its identification)."""
        return queue_counts(self.home).pending == 0 and open_plays(self.home) == 0

    def logged(self, pattern: str) -> int:
        """Lines matching `pattern` in every run's log."""
        logs = sorted(self.home.root.glob("daemon*.stderr"))
        return sum(len(re.findall(pattern, p.read_text(errors="replace"))) for p in logs)

    def unsure_rows(self) -> int:
        """Rows the killed daemon may have delivered without knowing (for the summary)."""
        conn = sqlite3.connect(self.home.db_file)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM outbox WHERE maybe_sent").fetchone()[0])
        finally:
            conn.close()


def open_plays(home: Home) -> int:
    conn = sqlite3.connect(home.db_file)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM plays").fetchone()[0])
    finally:
        conn.close()


def summary(scenario: Scenario, seconds: float, worst: float) -> str:
    requests = scenario.fake.requests()
    met = Counter(
        f"{r.status}" if r.fault is FaultKind.STATUS else str(r.fault)
        for r in requests
        if r.fault is not None
    )
    watched = sum(1 for o in scenario.outcomes if o.spec.watched)
    outage = scenario.plan.outage
    return (
        f"FAULT_SEED={SEED}: {len(scenario.outcomes)} plays ({watched} watched) on {PLAYERS} mpv, "
        f"{len(requests)} requests, faults met {dict(sorted(met.items()))}, "
        f"outage {outage[1]:.0f} s ({outage[2] or 'drop'}), kills {scenario.kills}; "
        f"plays taken over after a kill {scenario.logged(' goes on ')}, "
        f"finished after a kill {scenario.logged('finished the play')}, "
        f"identified after they ended {scenario.logged('after it ended')}; "
        f"worst watched_at {worst:+.2f} s; {seconds:.0f} s"
    )


def timeline(scenario: Scenario, requests: list[RecordedRequest]) -> str:
    """The run as the fake saw it, for a human after a failure (FAULT_VERBOSE=1)."""
    lines = [f"plan: outage {scenario.plan.outage}, faults {scenario.plan.faults}"]
    lines += [f"kills: {scenario.plan.kills}"]
    for r in requests:
        what = r.status if r.status is not None else "dropped"
        extra = f" [{r.fault}]" if r.fault else ""
        body = r.json if isinstance(r.json, dict) else {}
        if "progress" in body:
            extra += f" progress={body['progress']}"
        for kind in ("movies", "episodes", "shows"):
            if kind in body:
                extra += f" {kind}={len(body[kind])}"
        t = r.monotonic - scenario.started
        lines.append(f"{t:7.2f} {r.method} {r.path} -> {what}{extra}")
    return "\n".join(lines)


@pytest.mark.timeout(150)
def test_watches_survive_faults_and_kills(
    tmp_path: Path, media: MediaFiles, mpv_launcher: MpvLauncher, sock_dir: Path
) -> None:
    began = time.monotonic()
    folder = tmp_path / "films"
    folder.mkdir()
    with FakeTrakt() as fake:
        titles = catalogue(fake, folder, media)
        plan = make_plan(SEED, titles)
        home = Home.create(
            tmp_path / "home",
            fake.url,
            players=f'[mpv]\nsockets = ["{sock_dir}/*.sock"]\n',
            extra="[scrobble]\nhistory_after = 1\nrewatch_window = 1\n",
        )
        log_in(fake, home)
        scenario = Scenario(home, fake, plan, folder)
        mpvs = [mpv_launcher.start() for _ in range(PLAYERS)]
        scenario.start_daemon()
        scenario.started = time.monotonic()
        players = [
            threading.Thread(target=scenario.guarded(lambda m=m, s=s: scenario.player(m, s)))  # type: ignore[misc]
            for m, s in zip(mpvs, plan.plays, strict=True)
        ]
        others = [
            threading.Thread(target=scenario.guarded(scenario.faults)),
            threading.Thread(target=scenario.guarded(scenario.killer)),
        ]
        try:
            for thread in players + others:
                thread.start()
            for thread in players:
                thread.join(120)
            scenario.players_done.set()
            played = time.monotonic() - scenario.started
            for thread in others:
                thread.join(40)
            if scenario.errors:
                raise scenario.errors[0]
            scenario.drain()
            scenario.epilogue(mpvs[0])
            counts = queue_counts(home)
            history = fake.history()
            requests = fake.requests()
            offsets = {
                o.spec.title.key: e.watched_at.timestamp() - o.ended_at
                for o in scenario.outcomes
                for e in history
                if o.ended_at is not None and item_key(e.item) == o.spec.title.key
            }
            worst = max(offsets.values(), key=abs, default=0.0)
            drained = time.monotonic() - scenario.started - played
            print(summary(scenario, time.monotonic() - began, worst))
            print(f"played for {played:.0f} s, drained in {drained:.0f} s")
            if os.environ.get("FAULT_VERBOSE"):
                print(timeline(scenario, requests))
            assert scenario.current().terminate() == 0
        finally:
            scenario.abort.set()
            if scenario.daemon is not None and scenario.daemon.running:
                scenario.daemon.kill()

    assert counts.pending == 0 and counts.dead == 0, "nothing lost, nothing failed for good"
    assert len(scenario.outcomes) >= PLAYERS * PLAYS_PER_PLAYER
    plays = Counter(item_key(e.item) for e in history)
    watched = {o.spec.title.key for o in scenario.outcomes if o.spec.watched}
    assert set(plays) <= watched, "nothing in the history that was not watched"
    for outcome in scenario.outcomes:
        title = outcome.spec.title
        if not outcome.spec.watched:
            assert plays[title.key] == 0, f"{title.label}: stopped early, yet in the history"
            continue
        assert plays[title.key] == 1, f"{title.label}: {plays[title.key]} plays, not 1"
        off = offsets[title.key]
        assert abs(off) <= END_SLACK, f"{title.label}: watched_at {off:+.2f} s from the end"
    posts = [r for r in requests if r.method == "POST" and not r.path.startswith("/oauth/")]
    gaps = [(b.monotonic - a.monotonic, b.path) for a, b in itertools.pairwise(posts)]
    close = [(round(gap, 3), path) for gap, path in gaps if gap < POST_SPACING]
    assert not close, f"POSTs closer than {POST_SPACING} s: {close}"
