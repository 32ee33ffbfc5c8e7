"""Table tests of the scrobble state machine: player events at given times → Trakt calls.

Most plays last 100 s at speed 1, so a position in seconds reads as a progress in percent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from trakt_scrobbled.events import (
    Identified,
    Ids,
    MediaType,
    Pause,
    Play,
    Progress,
    Resume,
    Scrobble,
    ScrobbleVerb,
    Seek,
    SessionEvent,
    Stop,
    Tick,
    TraktItem,
)
from trakt_scrobbled.session import (
    Phase,
    Policy,
    Reported,
    SessionState,
    deadline,
    initial,
    progress,
    step,
)

MOVIE = TraktItem(MediaType.MOVIE, Ids(trakt=1), title="Heat", year=1995)
EPISODE = TraktItem(MediaType.EPISODE, show_ids=Ids(trakt=7), season=1, number=2)
T80 = Policy(watched_threshold=80.0)
T95 = Policy(watched_threshold=95.0)

Timeline = Sequence[tuple[float, SessionEvent]]


E1 = TraktItem(MediaType.EPISODE, show_ids=Ids(trakt=7), season=1, number=1)
E2 = TraktItem(MediaType.EPISODE, show_ids=Ids(trakt=7), season=1, number=2)
PARTS = (E1, E2)


def play(
    position: float,
    duration: float | None = 100.0,
    *,
    play_id: str = "p1",
    item: TraktItem | None = MOVIE,
    paused: bool = False,
    speed: float = 1.0,
    items: tuple[TraktItem, ...] = (),
    seen: frozenset[int] = frozenset(),
) -> Play:
    first = items[0] if items else item
    return Play(
        play_id, first, position, duration, paused=paused, speed=speed, items=items, seen=seen
    )


def start(pct: float, play_id: str = "p1", item: TraktItem = MOVIE) -> Scrobble:
    return Scrobble(ScrobbleVerb.START, play_id, item, pct)


def stop(
    pct: float, play_id: str = "p1", item: TraktItem = MOVIE, *, watched: bool = False
) -> Scrobble:
    return Scrobble(ScrobbleVerb.STOP, play_id, item, pct, watched=watched)


def run(timeline: Timeline, policy: Policy = T80) -> tuple[SessionState, list[Scrobble]]:
    state = initial()
    sent: list[Scrobble] = []
    for now, event in timeline:
        state, out = step(state, event, now, policy)
        sent.extend(out)
    return state, sent


CASES = [
    pytest.param(
        T80,
        [(0, play(0)), (0.5, Tick()), (0.99, Tick()), (1.0, Tick()), (30, Tick())],
        [start(0.0)],
        id="playing from 0 starts at once, at 0",
    ),
    pytest.param(
        T80,
        [(0, play(0, 1000, speed=100)), (0.05, Tick()), (0.1, Tick())],
        [start(0.0)],
        id="no tick starts anything: the start went at the play",
    ),
    pytest.param(
        T80,
        [(0, play(42))],
        [start(42.0)],
        id="playing from a resume point starts at once",
    ),
    pytest.param(
        T80,
        [(0, play(0)), (0.9, Stop())],
        [start(0.0), stop(1.0)],
        id="a peek under 1% closes with a stop at 1",
    ),
    pytest.param(
        T80,
        [(0, play(50)), (29.95, Pause())],
        [start(50.0), stop(79.9)],
        id="pause under threshold 80 is capped at 79.9",
    ),
    pytest.param(
        T95,
        [(0, play(50)), (40, Pause())],
        [start(50.0), stop(79.9)],
        id="pause under threshold 95 is capped at 79.9",
    ),
    pytest.param(
        T80,
        [(0, play(50)), (20, Pause())],
        [start(50.0), stop(70.0)],
        id="pause well under the threshold sends the real progress",
    ),
    pytest.param(
        T80,
        [(0, play(50)), (35, Pause())],
        [start(50.0), stop(85.0, watched=True)],
        id="pause above threshold 80 is a watch",
    ),
    pytest.param(
        T95,
        [(0, play(90)), (6, Pause(position=96))],
        [start(90.0), stop(96.0, watched=True)],
        id="pause above threshold 95 is a watch",
    ),
    pytest.param(
        T80,
        [(0, play(50)), (10, Pause()), (100, Resume())],
        [start(50.0), stop(60.0), start(60.0)],
        id="resume sends a start with the frozen progress",
    ),
    pytest.param(
        T80,
        [(0, play(50)), (10, Pause()), (100, Resume(position=20))],
        [start(50.0), stop(60.0), start(20.0)],
        id="resume takes the position it carries",
    ),
    pytest.param(
        T80,
        [
            (0, play(10)),
            (1.0, Seek(20)),
            (1.5, Seek(30)),
            (2.0, Seek(40)),
            (2.5, Seek(50)),
            (3.0, Seek(60)),
            (4.9, Tick()),
            (5.0, Tick()),
            (6.0, Tick()),
        ],
        [start(10.0), start(20.0), start(30.0), start(40.0), start(50.0), start(60.0)],
        id="each seek of a burst is a start at once (the outbox coalesces them)",
    ),
    pytest.param(
        T80,
        [(0, play(50)), (1, Seek(0)), (1.5, Stop())],
        [start(50.0), start(0.0), stop(1.0)],
        id="a started play stopped under 1% sends 1",
    ),
    pytest.param(
        T80,
        [(0, play(500, 1000)), (1, Seek(0)), (3, Tick())],
        [start(50.0), start(0.0)],
        id="a seek back to 0 starts at 0",
    ),
    pytest.param(
        T80,
        [(0, play(50)), (1, Seek(70)), (2, Pause()), (10, Tick())],
        [start(50.0), start(70.0), stop(71.0)],
        id="a seek, then a pause",
    ),
    pytest.param(
        T80,
        [(0, play(50)), (1, Seek(70)), (2, Stop()), (10, Tick())],
        [start(50.0), start(70.0), stop(71.0)],
        id="a seek, then a stop",
    ),
    pytest.param(
        T80,
        [(0, play(10)), (5, Pause()), (6, Seek(70)), (10, Resume()), (20, Tick())],
        [start(10.0), stop(15.0), start(70.0)],
        id="seek while paused is carried by the resume",
    ),
    pytest.param(
        T80,
        [(0, play(0)), (0.2, Seek(30)), (5, Tick())],
        [start(0.0), start(30.0)],
        id="a seek just after the start is a start at once",
    ),
    pytest.param(
        T80,
        [(0, play(300, 1000)), (200, Stop())],
        [start(30.0), stop(50.0)],
        id="stop while playing extrapolates at speed 1",
    ),
    pytest.param(
        T80,
        [(0, play(0, 1000, speed=100)), (0.1, Tick()), (5, Stop())],
        [start(0.0), stop(50.0)],
        id="stop while playing extrapolates at speed 100",
    ),
    pytest.param(
        T80,
        [(0, play(0, 1000, speed=100)), (0.1, Tick()), (50, Stop())],
        [start(0.0), stop(100.0, watched=True)],
        id="extrapolation stops at the duration",
    ),
    pytest.param(
        T80,
        [(0, play(500, 1000)), (497.8, Progress(997.8)), (497.8, Stop())],
        [start(50.0), stop(99.78, watched=True)],
        id="stop at eof after progress 99.78 is a watch",
    ),
    pytest.param(
        T80,
        [(0, play(500, 1000)), (499, Stop(position=997.8))],
        [start(50.0), stop(99.78, watched=True)],
        id="stop takes the position it carries",
    ),
    pytest.param(
        T80,
        [(0, play(50)), (10, play(0, play_id="p2", item=EPISODE)), (11, Tick())],
        [start(50.0), stop(60.0), start(0.0, "p2", EPISODE)],
        id="item replaced: stop, then the new play",
    ),
    pytest.param(
        T80,
        [(0, play(85)), (5, play(20, play_id="p2", item=EPISODE))],
        [start(85.0), stop(90.0, watched=True), start(20.0, "p2", EPISODE)],
        id="item replaced after the threshold: a watch, then the new play",
    ),
    pytest.param(
        T80,
        [
            (0, play(50, item=None)),
            (5, Pause()),
            (6, Resume()),
            (7, Seek(90)),
            (20, Tick()),
            (30, Stop()),
        ],
        [],
        id="an unidentified play sends nothing",
    ),
    pytest.param(
        T80,
        [(0, play(50, item=None)), (3, Identified(MOVIE)), (10, Stop())],
        [start(53.0), stop(60.0)],
        id="identified later while playing starts",
    ),
    pytest.param(
        T80,
        [(0, play(0, item=None)), (0.5, Identified(MOVIE)), (0.9, Tick()), (1.0, Tick())],
        [start(0.5)],
        id="identified later under 1% starts at once",
    ),
    pytest.param(
        T80,
        [(0, play(50, item=None)), (1, Pause()), (2, Identified(MOVIE)), (5, Resume())],
        [stop(51.0), start(51.0)],
        id="a pause before identification is told once identified; resume starts",
    ),
    pytest.param(
        T80,
        [(0, play(50, item=None)), (1, Identified(None)), (30, Stop())],
        [],
        id="identification that found nothing sends nothing",
    ),
    pytest.param(
        T80,
        [(0, play(50)), (1, Identified(EPISODE)), (10, Stop())],
        [start(50.0), stop(60.0)],
        id="the item is fixed once Trakt heard of the play",
    ),
    pytest.param(
        T80,
        [
            (0, play(90)),
            (5, Pause()),
            (6, Resume()),
            (7, Seek(10)),
            (20, Tick()),
            (25, Pause()),
            (30, Resume()),
            (40, Stop()),
        ],
        [start(90.0), stop(95.0, watched=True)],
        id="watched at most once per play",
    ),
    pytest.param(
        T80,
        [(0, play(90)), (20, Stop()), (21, Resume()), (22, Stop())],
        [start(90.0), stop(100.0, watched=True)],
        id="nothing after a watched stop",
    ),
    pytest.param(
        T80,
        [(0, play(30, None)), (5, Tick()), (10, Progress(40, duration=100)), (20, Stop())],
        [start(40.0), stop(50.0)],
        id="unknown duration, then a progress brings it",
    ),
    pytest.param(
        T80,
        [(0, play(30, 0)), (5, Progress(35, duration=0)), (10, Progress(40, duration=100))],
        [start(40.0)],
        id="a zero duration is unknown",
    ),
    pytest.param(
        T80,
        [(0, play(30, None)), (50, Stop())],
        [],
        id="a play whose duration never came sends nothing",
    ),
    pytest.param(
        T80,
        [(0, play(50)), (10, Progress(99, 100)), (20, Progress(100, 100)), (30, Tick())],
        [start(50.0)],
        id="progress never stops",
    ),
    pytest.param(
        T80,
        [(0, play(0)), (0.5, Pause()), (1, Resume()), (1.4, Tick()), (1.5, Tick())],
        [start(0.0), stop(1.0), start(0.5)],
        id="a pause just after the start stops at 1",
    ),
    pytest.param(
        T80,
        [(0, play(50, paused=True)), (5, Resume())],
        [start(50.0)],
        id="found paused, then resumed",
    ),
    pytest.param(
        T80,
        [(0, play(50, paused=True)), (1, Seek(95)), (2, Stop())],
        [],
        id="never started: no watch invented from a seek to the end",
    ),
    pytest.param(
        T80,
        [(0, play(50)), (5, Pause()), (6, Seek(99)), (7, Stop())],
        [start(50.0), stop(55.0)],
        id="stop while paused sends nothing more",
    ),
    pytest.param(
        T80,
        [
            (0, Pause()),
            (1, Resume()),
            (2, Seek(50)),
            (3, Progress(50, 100)),
            (4, Identified(MOVIE)),
            (5, Tick()),
            (6, Stop()),
        ],
        [],
        id="events before any play are ignored",
    ),
    pytest.param(
        T80,
        [(0, play(50)), (1, Stop()), (2, Resume()), (3, Seek(90)), (10, Tick()), (20, Stop())],
        [start(50.0), stop(51.0)],
        id="events after a stop are ignored",
    ),
    pytest.param(
        T80,
        [(0, play(0)), (30, Stop())],
        [start(0.0), stop(30.0)],
        id="a play from 0 stopped at 30 %",
    ),
    pytest.param(
        T80,
        [(0, play(50)), (0, Seek(70)), (10, Stop())],
        [start(50.0), start(70.0), stop(80.0, watched=True)],
        id="a seek is a start at once, with its own position",
    ),
    # --- DESIGN's examples -------------------------------------------------------------------
    pytest.param(
        T80,
        [(0, play(0)), (0.1, Pause(position=40))],
        [start(0.0), stop(40.0)],
        id="Plex: play at 0, pause at 40 % is a stop at 40",
    ),
    pytest.param(
        T80,
        [(0, play(0, item=None)), (0.1, Pause(position=40)), (0.2, Identified(MOVIE))],
        [stop(40.0)],
        id="a pause at 40 % before identification is a stop at 40 once identified",
    ),
    pytest.param(
        T80,
        [(0, play(0, item=None)), (0.1, Pause(position=40)), (0.2, Identified(None))],
        [],
        id="nothing for a play that stays unidentified, paused or not",
    ),
    pytest.param(
        T80,
        [(0, play(0, item=None)), (50, Stop()), (51, Identified(MOVIE))],
        [stop(50.0)],
        id="stopped before identification: the stop is told once identified",
    ),
    pytest.param(
        T80,
        [(0, play(0, item=None)), (90, Stop()), (200, Identified(MOVIE))],
        [stop(90.0, watched=True)],
        id="watched before identification: the watch is told once identified",
    ),
    pytest.param(
        T80,
        [(0, play(50, paused=True, item=None)), (1, Stop()), (2, Identified(MOVIE))],
        [],
        id="found paused and stopped before identification: nothing happened to tell",
    ),
    pytest.param(
        T80,
        [(0, play(0, item=None)), (1, Identified(MOVIE, seen=frozenset({0}))), (95, Stop())],
        [start(1.0), stop(79.9)],
        id="a rewatch within the window is started and closed under 80",
    ),
    pytest.param(
        T80,
        [(0, play(50, seen=frozenset({0}))), (10, Pause()), (11, Resume()), (40, Stop())],
        [start(50.0), stop(60.0), start(60.0), stop(79.9)],
        id="a rewatch may pause and resume; it never becomes a watch",
    ),
    # --- multi-episode files -------------------------------------------------------------------
    pytest.param(
        T80,
        [(0, play(0, items=PARTS)), (25, Tick()), (50, Tick()), (100, Stop())],
        [
            start(0.0, item=E1),
            stop(100.0, item=E1, watched=True),
            start(0.0, "p1.2", E2),
            stop(100.0, "p1.2", E2, watched=True),
        ],
        id="two episodes played through: stop at the boundary, start of the next",
    ),
    pytest.param(
        T80,
        [(0, play(0, items=PARTS)), (80, Stop())],
        [
            start(0.0, item=E1),
            stop(100.0, item=E1, watched=True),
            start(0.0, "p1.2", E2),
            stop(60.0, "p1.2", E2),
        ],
        id="a missed boundary tick is caught up by the next event, as if on time",
    ),
    pytest.param(
        T80,
        [(0, play(10, items=PARTS)), (1, Seek(75)), (2, Seek(20)), (3, Stop())],
        [
            start(20.0, item=E1),
            stop(22.0, item=E1),
            start(50.0, "p1.2", E2),
            stop(52.0, "p1.2", E2),
            start(40.0, item=E1),
            stop(42.0, item=E1),
        ],
        id="seeks across the boundary stop one part and start the other",
    ),
    pytest.param(
        T80,
        [(0, play(45, items=PARTS)), (10, Seek(10)), (20, Stop())],
        [
            start(90.0, item=E1),
            stop(100.0, item=E1, watched=True),
            start(0.0, "p1.2", E2),
            stop(10.0, "p1.2", E2),
        ],
        id="back into a watched part: nothing more for it",
    ),
]


@pytest.mark.parametrize(("policy", "timeline", "expected"), CASES)
def test_scrobbles(policy: Policy, timeline: Timeline, expected: list[Scrobble]) -> None:
    _, sent = run(timeline, policy)
    assert sent == expected


DEADLINES = [
    pytest.param([], None, id="idle before any play"),
    pytest.param([(0, play(0))], None, id="a play from 0 started at once: nothing pending"),
    pytest.param([(0, play(50)), (3, Seek(20))], None, id="a seek started at once"),
    pytest.param([(0, play(0, items=PARTS))], 50.0, id="the episode boundary"),
    pytest.param([(10, play(0, items=PARTS, speed=0.5))], 110.0, id="the boundary at speed 0.5"),
    pytest.param([(0, play(10, items=PARTS)), (5, Seek(60))], None, id="in the last part"),
    pytest.param([(0, play(0, items=PARTS, speed=0))], None, id="speed 0 never gets there"),
    pytest.param([(0, play(0, items=PARTS, paused=True))], None, id="paused"),
    pytest.param([(0, play(0, item=None))], None, id="unidentified"),
    pytest.param([(0, play(0, None))], None, id="duration unknown"),
    pytest.param([(0, play(0)), (0.5, Stop())], None, id="stopped"),
    pytest.param([(0, play(90)), (1, Pause()), (2, Resume())], None, id="watched"),
]


@pytest.mark.parametrize(("timeline", "expected"), DEADLINES)
def test_deadline(timeline: Timeline, expected: float | None) -> None:
    state, _ = run(timeline)
    due = deadline(state, T80)
    if expected is None:
        assert due is None
    else:
        assert due == pytest.approx(expected)


@pytest.mark.parametrize(
    ("position", "duration", "speed", "t0"),
    [
        (0.0, 100.0, 1.0, 0.0),
        (3.3, 1234.567, 1.37, 1e6 + 0.1),
        (0.0, 7.0, 3.0, 12345.678),
        (0.001, 86400.0 * 3, 0.25, 99.9),
        (0.0, 0.3, 1.0, 5e8),
    ],
)
def test_a_tick_at_the_deadline_crosses_the_boundary(
    position: float, duration: float, speed: float, t0: float
) -> None:
    """Float error at an episode boundary must never leave the driver ticking in a loop."""
    state, sent = step(initial(), play(position, duration, speed=speed, items=PARTS), t0, T80)
    due = deadline(state, T80)
    assert [s.verb for s in sent] == [ScrobbleVerb.START]
    assert due is not None and due > t0
    state, sent = step(state, Tick(), due, T80)
    assert [(s.verb, s.item, s.watched) for s in sent] == [
        (ScrobbleVerb.STOP, E1, True),
        (ScrobbleVerb.START, E2, False),
    ]
    assert state.reported is Reported.STARTED and state.part == 1
    assert deadline(state, T80) is None


def test_progress_extrapolates_while_playing_and_freezes_when_paused() -> None:
    state, _ = run([(0, play(10, 200, speed=2))])
    assert progress(state, 5) == pytest.approx(10.0)
    assert progress(state, 1000) == 100.0
    state, _ = step(state, Pause(), 5, T80)
    assert state.phase is Phase.PAUSED
    assert progress(state, 1000) == pytest.approx(10.0)


def test_progress_is_none_without_duration_or_playback() -> None:
    assert progress(initial(), 0) is None
    state, _ = run([(0, play(10, None))])
    assert progress(state, 5) is None
    state, _ = step(state, Stop(), 6, T80)
    assert state.phase is Phase.IDLE
    assert progress(state, 7) is None


def test_progress_is_clamped() -> None:
    state, _ = run([(0, play(-5, 100, paused=True))])
    assert progress(state, 1) == 0.0
    state, _ = step(state, Seek(500), 2, T80)
    assert progress(state, 3) == 100.0


def test_garbage_numbers_keep_the_last_known_ones() -> None:
    state, _ = run([(0, play(50)), (1, Progress(math.nan, math.nan, math.nan))])
    assert state.position == pytest.approx(51.0)
    assert state.duration == 100.0 and state.speed == 1.0


def test_stop_leaves_the_last_play_for_status() -> None:
    state, _ = run([(0, play(85)), (2, Stop())])
    assert (state.phase, state.play_id, state.item) == (Phase.IDLE, "p1", MOVIE)
    assert state.reported is Reported.WATCHED


@pytest.mark.parametrize(
    "kwargs",
    [
        {"watched_threshold": 79.0},
        {"watched_threshold": 101.0},
        {"min_progress": 0.5},
        {"pause_cap": 80.0},
        {"pause_cap": 0.5},
        {"watched_threshold": math.nan},
    ],
)
def test_policy_rejects_what_trakt_would_misread(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must be|need"):
        Policy(**kwargs)
