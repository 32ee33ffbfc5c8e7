"""Invariants of the scrobble state machine over random event sequences (hypothesis).

The driver here behaves like the app's: it feeds events at increasing times and, in between,
calls `step(..., Tick(), ...)` at every `deadline()` that falls due. Plays may be multi-episode
files (each part is a play of its own for Trakt, `p1`, `p1.2`...), may be identified late or
never, and may be rewatches (`seen` parts, closed under 80 %).
"""

from __future__ import annotations

import dataclasses
import itertools
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
    Identity,
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
E1 = TraktItem(MediaType.EPISODE, show_ids=Ids(trakt=7), season=1, number=1)
E2 = TraktItem(MediaType.EPISODE, show_ids=Ids(trakt=7), season=1, number=2)
E3 = TraktItem(MediaType.EPISODE, show_ids=Ids(trakt=7), season=1, number=3)
TRAKT_WATCHED_AT = 80.0
MAX_TICKS_PER_GAP = 10

items = st.sampled_from([MOVIE, MOVIE, EPISODE, None])
parts = st.sampled_from([(), (), (E1, E2), (E1, E2, E3)])
seen = st.sampled_from([frozenset(), frozenset(), frozenset({0}), frozenset({1})])
positions = st.floats(-5.0, 12_000.0, allow_nan=False)
durations = st.one_of(st.floats(0.5, 10_000.0), st.just(100.0), st.sampled_from([None, 0.0]))
speeds = st.one_of(st.just(1.0), st.floats(0.01, 100.0), st.sampled_from([0.0, 1.0, 1.5]))
maybe_positions = st.one_of(st.none(), positions)

plays = st.builds(
    lambda play, more, seen: (
        dataclasses.replace(
            play, item=more[0] if more and play.item else play.item, items=more if play.item else ()
        )
        if more
        else dataclasses.replace(play, seen=seen)
    ),
    st.builds(
        Play,
        play_id=st.just("?"),  # the driver numbers plays: every Play is a new playback
        item=items,
        position=st.one_of(st.just(0.0), positions),
        duration=durations,
        paused=st.sampled_from([False, False, False, True]),
        speed=speeds,
    ),
    parts,
    seen,
)
identified = st.builds(
    lambda item, more, seen: (
        Identified(more[0], parts=more, seen=seen) if more and item else Identified(item, seen=seen)
    ),
    items,
    parts,
    seen,
)
events: st.SearchStrategy[SessionEvent] = st.one_of(
    plays,
    identified,
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
policies = st.builds(Policy, watched_threshold=st.floats(80.0, 100.0))

Sent = tuple[float, set[str | None], Scrobble, bool]
"""When a Scrobble was sent, the plays current before and after that step, the Scrobble, and
whether the play head may have jumped (an event carried a position) since the play last spoke."""


@dataclasses.dataclass(frozen=True, slots=True)
class Trace:
    sent: list[Sent]
    states: list[SessionState]
    offered: dict[str, set[TraktItem]]
    """Per play: every item it was given (at Play or by Identified)."""


def base(play_id: str) -> str:
    """The play a part's id belongs to (`p3.2` is part 2 of play `p3`)."""
    return play_id.split(".", 1)[0]


def jumps(event: SessionEvent) -> bool:
    """Whether an event may move the play head other than by playing."""
    match event:
        case Seek() | Progress() | Play():
            return True
        case Pause(position=pos) | Resume(position=pos) | Stop(position=pos):
            return pos is not None
    return False


def drive(
    policy: Policy, timeline: Sequence[tuple[SessionEvent, float]], *, tick: bool = True
) -> Trace:
    """Run `timeline` and a final Stop, ticking at each deadline; check the deadline contract."""
    state = initial()
    now = 0.0
    trace = Trace([], [state], {})

    jumped = True

    def feed(event: SessionEvent, at: float) -> None:
        nonlocal state, jumped
        before = state.play_id
        jumped = jumped or jumps(event)
        state, out = step(state, event, at, policy)
        trace.sent.extend((at, {before, state.play_id}, s, jumped) for s in out)
        if out:
            jumped = False
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
            given = set(event.items) | ({event.item} if event.item else set())
            trace.offered[event.play_id] = given
        elif (
            isinstance(event, Identified)
            and event.item
            and state.play_id
            and state.identity is Identity.IDENTIFYING
        ):
            trace.offered[state.play_id] |= {event.item, *event.parts}
        feed(event, now)
    return trace


@settings(max_examples=400, deadline=None)
@given(policies, timelines)
def test_invariants(policy: Policy, timeline: list[tuple[SessionEvent, float]]) -> None:
    trace = drive(policy, timeline)
    final = trace.states[-1]
    assert final.phase is Phase.IDLE and deadline(final, policy) is None

    open_plays: set[str] = set()
    watched: set[str] = set()
    last: dict[str, float] = {}
    for _, current, s, jumped in trace.sent:
        # Only the play in progress (or the one a new Play just replaced) ever speaks.
        assert base(s.play_id) in current
        # Starts from 0, stops from 1 % (Trakt's 422), nothing over 100 %, rounded.
        least = 0.0 if s.verb is ScrobbleVerb.START else policy.min_progress
        assert least <= s.progress <= 100.0
        assert s.progress == round(s.progress, 2)
        # Only items this very play was given; an unidentified play stays silent.
        assert s.item in trace.offered.get(base(s.play_id), set())
        # A watch is final: nothing at all after it for that play (part).
        assert s.play_id not in watched
        # Within a play, progress only moves forward unless the play head jumped (a stop
        # held under 80 % is capped, not moved).
        capped = not s.watched and s.progress == policy.pause_cap
        if not jumped and not capped and s.play_id in last and s.play_id in open_plays:
            assert s.progress >= last[s.play_id]
        last[s.play_id] = s.progress
        if s.verb is ScrobbleVerb.START:
            assert not s.watched
            open_plays.add(s.play_id)
            continue
        # A stop closes what was started; one may also come alone, for a play that paused or
        # ended before it could be identified (Trakt hears where it was, with its position).
        open_plays.discard(s.play_id)
        if s.watched:
            assert s.progress >= policy.watched_threshold
            watched.add(s.play_id)
        else:
            # Trakt would count a stop at 80 % as a watch: unwatched stops stay under it.
            assert s.progress <= policy.pause_cap < TRAKT_WATCHED_AT
    # Every start was followed by a stop (or a later start) once the final Stop went through.
    assert open_plays == set()


@settings(max_examples=200, deadline=None)
@given(policies, timelines)
def test_a_rewatch_never_records_a_watch(
    policy: Policy, timeline: list[tuple[SessionEvent, float]]
) -> None:
    """A part Trakt recorded watched within the window (`seen`) is never watched again."""
    trace = drive(policy, timeline)
    for before, after in itertools.pairwise(trace.states):
        if before.play_id == after.play_id:
            assert (after.watched - before.watched).isdisjoint(after.seen)


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
            for _, _, s, _ in trace.sent
        ]

    assert shape(lazy) == shape(punctual)
