"""Invariants of the scrobble state machine over random event sequences (hypothesis).

The driver here behaves like the app's: it feeds events at increasing times and, in between,
calls `step(..., Tick(), ...)` at every `deadline()` that falls due.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

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
    SessionState,
    deadline,
    initial,
    progress,
    step,
)

MOVIE = TraktItem(MediaType.MOVIE, Ids(trakt=1), title="Heat", year=1995)
EPISODE = TraktItem(MediaType.EPISODE, Ids(trakt=2))
TRAKT_WATCHED_AT = 80.0
MAX_TICKS_PER_GAP = 10

items = st.sampled_from([MOVIE, MOVIE, EPISODE, None])
positions = st.floats(-5.0, 12_000.0, allow_nan=False)
durations = st.one_of(st.floats(0.5, 10_000.0), st.just(100.0), st.sampled_from([None, 0.0]))
speeds = st.one_of(st.just(1.0), st.floats(0.01, 100.0), st.sampled_from([0.0, 1.0, 1.5]))
maybe_positions = st.one_of(st.none(), positions)

plays = st.builds(
    Play,
    play_id=st.just("?"),  # the driver numbers plays: every Play is a new playback
    item=items,
    position=st.one_of(st.just(0.0), positions),
    duration=durations,
    paused=st.sampled_from([False, False, False, True]),
    speed=speeds,
)
events: st.SearchStrategy[SessionEvent] = st.one_of(
    plays,
    st.builds(Identified, item=items),
    st.builds(Pause, position=maybe_positions),
    st.builds(Resume, position=maybe_positions),
    st.builds(Seek, position=positions),
    st.builds(
        Progress,
        position=positions,
        duration=st.one_of(st.none(), durations),
        speed=st.one_of(st.none(), speeds),
    ),
    st.builds(Stop, position=maybe_positions),
    st.just(Tick()),
)
gaps = st.one_of(st.just(0.0), st.floats(0.0, 5.0), st.floats(0.0, 3_000.0))
timelines = st.builds(
    lambda first, rest: [first, *rest],
    st.tuples(plays, gaps),
    st.lists(st.tuples(events, gaps), max_size=30),
)
policies = st.builds(
    Policy,
    watched_threshold=st.floats(80.0, 100.0),
    seek_debounce=st.one_of(st.just(0.0), st.floats(0.0, 10.0)),
)

Sent = tuple[float, set[str | None], Scrobble]
"""When a Scrobble was sent, the plays current before and after that step, and the Scrobble."""


@dataclasses.dataclass(frozen=True, slots=True)
class Trace:
    sent: list[Sent]
    states: list[SessionState]
    offered: dict[str, set[TraktItem]]
    """Per play: every item it was given (at Play or by Identified)."""


def drive(
    policy: Policy, timeline: Sequence[tuple[SessionEvent, float]], *, tick: bool = True
) -> Trace:
    """Run `timeline` and a final Stop, ticking at each deadline; check the deadline contract."""
    state = initial()
    now = 0.0
    trace = Trace([], [state], {})

    def feed(event: SessionEvent, at: float) -> None:
        nonlocal state
        before = state.play_id
        state, out = step(state, event, at, policy)
        trace.sent.extend((at, {before, state.play_id}, s) for s in out)
        trace.states.append(state)
        due = deadline(state, policy)
        assert due is None or (due > at and due >= state.position_at)
        pct = progress(state, at)
        assert pct is None or 0.0 <= pct <= 100.0

    for number, (event, gap) in enumerate([*timeline, (Stop(), 0.0)]):
        until = now + gap
        if tick:
            for _ in range(MAX_TICKS_PER_GAP):
                due = deadline(state, policy)
                if due is None or due > until:
                    break
                now = due
                feed(Tick(), now)
            else:
                raise AssertionError("ticking at the deadline did not move it on")
        now = until
        if isinstance(event, Play):
            event = dataclasses.replace(event, play_id=f"p{number}")
            trace.offered[event.play_id] = {event.item} if event.item else set()
        elif isinstance(event, Identified) and event.item and state.play_id:
            trace.offered[state.play_id].add(event.item)
        feed(event, now)
    return trace


@settings(max_examples=300, deadline=None)
@given(policies, timelines)
def test_invariants(policy: Policy, timeline: list[tuple[SessionEvent, float]]) -> None:
    trace = drive(policy, timeline)
    final = trace.states[-1]
    assert final.phase is Phase.IDLE and final.seek_due is None

    open_plays: set[str] = set()
    watched: set[str] = set()
    for _, current, s in trace.sent:
        # Only the play in progress (or the one a new Play just replaced) ever speaks.
        assert s.play_id in current
        # Nothing under 1 %, nothing over 100 %, rounded as Trakt shows it.
        assert policy.min_progress <= s.progress <= 100.0
        assert s.progress == round(s.progress, 2)
        # Only items this very play was given; an unidentified play stays silent.
        assert s.item in trace.offered.get(s.play_id, set())
        # A watch is final: nothing at all after it for that play.
        assert s.play_id not in watched
        if s.verb is ScrobbleVerb.START:
            assert not s.watched
            open_plays.add(s.play_id)
            continue
        # No stop without a start before it.
        assert s.play_id in open_plays
        open_plays.discard(s.play_id)
        if s.watched:
            assert s.progress >= policy.watched_threshold
            watched.add(s.play_id)
        else:
            # Trakt would count a stop at 80 % as a watch: unwatched stops stay under it.
            assert s.progress <= policy.pause_cap < TRAKT_WATCHED_AT
    # Every play that started has ended with a stop once the final Stop went through.
    assert open_plays == set()


@settings(max_examples=200, deadline=None)
@given(policies, timelines)
def test_step_is_deterministic(policy: Policy, timeline: list[tuple[SessionEvent, float]]) -> None:
    first = drive(policy, timeline)
    second = drive(policy, timeline)
    assert first.sent == second.sent
    assert first.states == second.states


@settings(max_examples=200, deadline=None)
@given(policies, timelines)
def test_late_ticks_lose_nothing(
    policy: Policy, timeline: list[tuple[SessionEvent, float]]
) -> None:
    """Without any tick, the same calls go out (starts may carry a later progress)."""
    punctual = drive(policy, timeline)
    lazy = drive(policy, timeline, tick=False)

    def shape(trace: Trace) -> list[tuple[ScrobbleVerb, str, bool, float | None]]:
        return [
            (s.verb, s.play_id, s.watched, s.progress if s.verb is ScrobbleVerb.STOP else None)
            for _, _, s in trace.sent
        ]

    assert shape(lazy) == shape(punctual)
