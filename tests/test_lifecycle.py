"""The life of a source's plays, pure: tables of player events and answers → effects, and
invariants over random sequences (hypothesis), including plays identified late, never, held
over a restart and ended before they were known.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trakt_scrobbled import lifecycle
from trakt_scrobbled.events import (
    Ended,
    EndReason,
    Identified,
    Ids,
    MediaInfo,
    MediaType,
    Paused,
    Playing,
    Progressed,
    Resumed,
    Scrobble,
    ScrobbleVerb,
    Seeked,
    Tick,
    TraktItem,
)
from trakt_scrobbled.lifecycle import Answer, Identify, Kept, Release, Send, Source
from trakt_scrobbled.session import Identity, Phase, Policy, Reported, SessionState

SRC = "mpv:/tmp/s"
MOVIE = TraktItem(MediaType.MOVIE, Ids(trakt=1), title="Heat", year=1995)
OTHER = TraktItem(MediaType.MOVIE, Ids(trakt=2), title="Ronin", year=1998)
E1 = TraktItem(MediaType.EPISODE, show_ids=Ids(trakt=7), season=1, number=1)
E2 = TraktItem(MediaType.EPISODE, show_ids=Ids(trakt=7), season=1, number=2)
HEAT = MediaInfo(path="/m/Heat.1995.mkv", duration=100.0)
RONIN = MediaInfo(path="/m/Ronin.1998.mkv", duration=100.0)
DOUBLE = MediaInfo(path="/t/Show.S01E01-E02.mkv", duration=100.0)
POLICY = Policy()
WALL0 = 1_700_000_000.0

Step = tuple[float, lifecycle.LifecycleEvent]


def run(
    steps: Sequence[Step], src: Source | None = None
) -> tuple[Source, list[tuple[float, lifecycle.Effect]]]:
    src = src or Source("p")
    out: list[tuple[float, lifecycle.Effect]] = []
    for now, event in steps:
        src, effects = lifecycle.step(src, event, now, WALL0 + now, POLICY)
        out.extend((now, e) for e in effects)
    return src, out


def sends(effects: list[tuple[float, lifecycle.Effect]]) -> list[tuple[str, str, float, bool]]:
    return [
        (e.scrobble.verb.value, e.scrobble.play_id, e.scrobble.progress, e.scrobble.watched)
        for _, e in effects
        if isinstance(e, Send)
    ]


def known(item: TraktItem, *parts: TraktItem, seen: frozenset[int] = frozenset()) -> Identified:
    return Identified(item, parts=parts, seen=seen)


def test_a_play_asks_for_its_identification_and_starts_at_once_when_known() -> None:
    src, out = run([(0, Playing(SRC, HEAT, 0.0, 100.0))])
    assert [e for _, e in out] == [Identify("p-1", HEAT)]
    assert src.current.identity is Identity.IDENTIFYING
    src, out = run([(0.05, Answer("p-1", known(MOVIE)))], src)
    assert sends(out) == [("start", "p-1", 0.05, False)]


TABLE = [
    pytest.param(
        [
            (0, Playing(SRC, HEAT, 0.0, 100.0)),
            (0.1, Answer("p-1", known(MOVIE))),
            (40, Paused(SRC, 40.0)),
            (50, Ended(SRC, None, EndReason.STOPPED)),
        ],
        [("start", "p-1", 0.1, False), ("stop", "p-1", 40.0, False)],
        id="play at 0, pause at 40 %: start, then stop at 40",
    ),
    pytest.param(
        [
            (0, Playing(SRC, HEAT, 0.0, 100.0)),
            (0.1, Paused(SRC, 40.0)),
            (0.2, Answer("p-1", known(MOVIE))),
        ],
        [("stop", "p-1", 40.0, False)],
        id="paused at 40 % before it was known: a stop at 40 once known",
    ),
    pytest.param(
        [
            (0, Playing(SRC, HEAT, 0.0, 100.0)),
            (90, Ended(SRC, 90.0, EndReason.EOF)),
            (100, Playing(SRC, RONIN, 0.0, 100.0)),
            (101, Answer("p-2", known(OTHER))),
            (300, Answer("p-1", known(MOVIE))),
        ],
        [("start", "p-2", 1.0, False), ("stop", "p-1", 90.0, True)],
        id="ended unidentified: kept while the next play goes on, told once known",
    ),
    pytest.param(
        [
            (0, Playing(SRC, HEAT, 0.0, 100.0)),
            (90, Ended(SRC, 90.0, EndReason.EOF)),
            (300, Answer("p-1", Identified(None))),
        ],
        [],
        id="ended, then found to be nothing: nothing is sent",
    ),
    pytest.param(
        [
            (0, Playing(SRC, HEAT, 0.0, 100.0)),
            (1, Answer("p-1", known(MOVIE, seen=frozenset({0})))),
            (95, Ended(SRC, 95.0, EndReason.EOF)),
        ],
        [("start", "p-1", 1.0, False), ("stop", "p-1", 79.9, False)],
        id="a rewatch closes with a stop under 80",
    ),
    pytest.param(
        [
            (0, Playing(SRC, HEAT, 20.0, 100.0)),
            (1, Answer("p-1", known(MOVIE))),
            (10, Playing(SRC, RONIN, 0.0, 100.0)),
        ],
        [("start", "p-1", 21.0, False), ("stop", "p-1", 30.0, False)],
        id="item replaced: the old play closes with a stop",
    ),
    pytest.param(
        [
            (0, Playing(SRC, DOUBLE, 0.0, 100.0)),
            (0, Answer("p-1", known(E1, E1, E2))),
            (50, Tick()),
            (100, Ended(SRC, 100.0, EndReason.EOF)),
        ],
        [
            ("start", "p-1", 0.0, False),
            ("stop", "p-1", 100.0, True),
            ("start", "p-1.2", 0.0, False),
            ("stop", "p-1.2", 100.0, True),
        ],
        id="S01E01-E02: two plays, each watched once",
    ),
    pytest.param(
        [
            (0, Playing(SRC, HEAT, 10.0, 100.0)),
            (1, Answer("p-1", known(MOVIE))),
            (2, Playing(SRC, HEAT, 30.0, 100.0)),
            (3, Ended(SRC, None, EndReason.STOPPED)),
        ],
        [("start", "p-1", 11.0, False), ("stop", "p-1", 31.0, False)],
        id="the same item reported again (reconnect) goes on as the same play",
    ),
]


@pytest.mark.parametrize(("steps", "expected"), TABLE)
def test_table(steps: list[Step], expected: list[tuple[str, str, float, bool]]) -> None:
    _, out = run(steps)
    assert sends(out) == expected


def held(state: SessionState, media: MediaInfo = HEAT, at: float = WALL0 - 60) -> Kept:
    return Kept(state, media, at)


PLAYING_85 = SessionState(
    play_id="old-1",
    items=(MOVIE,),
    phase=Phase.PLAYING,
    position=85.0,
    position_at=0.0,
    duration=100.0,
    speed=1.0,
    reported=Reported.STARTED,
    identity=Identity.IDENTIFIED,
)


def test_a_held_play_released_ends_where_and_when_it_was_last_seen() -> None:
    src, effects = lifecycle.recovered("p", held(PLAYING_85), ())
    assert effects == []
    src, out = run([(5, Release())], src)
    assert [e for _, e in out] == [
        Send(Scrobble(ScrobbleVerb.STOP, "old-1", MOVIE, 85.0, watched=True), WALL0 - 60)
    ]
    assert src.idle


def test_a_held_play_reported_again_goes_on_as_the_same_play() -> None:
    src, _ = lifecycle.recovered("p", held(PLAYING_85), ())
    src, out = run([(5, Playing(SRC, HEAT, 86.0, 100.0)), (10, Ended(SRC, 91.0))], src)
    assert sends(out) == [("stop", "old-1", 91.0, True)]


def test_a_held_play_is_finished_when_its_source_plays_something_else() -> None:
    src, _ = lifecycle.recovered("p", held(PLAYING_85), ())
    src, out = run([(5, Playing(SRC, RONIN, 0.0, 100.0))], src)
    assert sends(out) == [("stop", "old-1", 85.0, True)]
    assert [e for _, e in out if isinstance(e, Identify)] == [Identify("p-1", RONIN)]


def test_a_held_rewatch_learnt_at_restart_is_not_watched_twice() -> None:
    """The kill came after the watch was queued but before the snapshot said so."""
    src, _ = lifecycle.recovered("p", held(PLAYING_85), ())
    src, out = run([(0, Answer("old-1", known(MOVIE, seen=frozenset({0})))), (1, Release())], src)
    assert sends(out) == [("stop", "old-1", 79.9, False)]


def test_recovered_plays_still_unknown_are_identified_again() -> None:
    unknown = dataclasses.replace(
        PLAYING_85, play_id="old-2", items=(), identity=Identity.IDENTIFYING, phase=Phase.IDLE
    )
    ended = Kept(dataclasses.replace(unknown, owed=True), RONIN, WALL0 - 30)
    src, effects = lifecycle.recovered("p", None, (ended,))
    assert effects == [Identify("old-2", RONIN)]
    src, out = run([(1, Answer("old-2", known(OTHER)))], src)
    assert [e for _, e in out] == [
        Send(Scrobble(ScrobbleVerb.STOP, "old-2", OTHER, 85.0, watched=True), WALL0 - 30)
    ]
    assert src.idle


# --- invariants over random sequences -------------------------------------------------------

medias = st.sampled_from([HEAT, RONIN, DOUBLE])
positions = st.floats(0.0, 120.0, allow_nan=False)
maybe = st.one_of(st.none(), positions)
player_events = st.one_of(
    st.builds(
        Playing,
        source=st.just(SRC),
        media=medias,
        position=maybe,
        duration=st.sampled_from([100.0, None]),
        paused=st.sampled_from([False, False, True]),
    ),
    st.builds(Paused, source=st.just(SRC), position=maybe),
    st.builds(Resumed, source=st.just(SRC), position=maybe),
    st.builds(Seeked, source=st.just(SRC), position=positions),
    st.builds(Progressed, source=st.just(SRC), position=positions),
    st.builds(Ended, source=st.just(SRC), position=maybe),
)
# An answer is drawn as "answer the n-th outstanding identification with this outcome".
answers = st.tuples(st.integers(0, 3), st.sampled_from(["found", "found", "none", "seen"]))
actions = st.one_of(player_events, answers, st.just(Release()), st.just(Tick()))
scripts = st.lists(st.tuples(actions, st.floats(0.0, 60.0)), max_size=30)
starts_held = st.booleans()

ITEMS = {HEAT.path: (MOVIE,), RONIN.path: (OTHER,), DOUBLE.path: (E1, E2)}


def outcome(media: MediaInfo, kind: str) -> Identified:
    items = ITEMS[media.path or ""]
    if kind == "none":
        return Identified(None)
    return Identified(
        items[0],
        parts=items if len(items) > 1 else (),
        seen=frozenset({0}) if kind == "seen" else frozenset(),
    )


@settings(max_examples=300, deadline=None)
@given(scripts, starts_held)
def test_invariants(script: list[tuple[object, float]], with_held: bool) -> None:
    src: Source
    pending: dict[str, MediaInfo] = {}
    if with_held:
        src, _ = lifecycle.recovered("p", held(PLAYING_85), ())
    else:
        src = Source("p")
    now = 0.0
    sent: list[Scrobble] = []
    given_items: dict[str, set[TraktItem]] = {"old-1": {MOVIE}}
    nothing: set[str] = set()

    def feed(event: lifecycle.LifecycleEvent) -> None:
        nonlocal src
        src, out = lifecycle.step(src, event, now, WALL0 + now, POLICY)
        for effect in out:
            if isinstance(effect, Identify):
                pending[effect.play_id] = effect.media
            else:
                sent.append(effect.scrobble)
        due = lifecycle.deadline(src, POLICY)
        assert due is None or due > now

    def answer(play_id: str, kind: str) -> None:
        media = pending.pop(play_id)
        identified = outcome(media, kind)
        if identified.item is None:
            nothing.add(play_id)
        else:
            given_items[play_id] = {identified.item, *identified.parts}
        feed(Answer(play_id, identified))

    for action, gap in [*script, (Ended(SRC, None), 0.0), (Release(), 0.0)]:
        for _ in range(5):  # tick at each deadline that falls due, as the shell does
            due = lifecycle.deadline(src, POLICY)
            if due is None or due > now + gap:
                break
            now = due
            feed(Tick())
        now += gap
        if isinstance(action, tuple):
            index, kind = action
            if pending:
                answer(sorted(pending)[index % len(pending)], kind)
        else:
            assert isinstance(
                action, (Playing, Paused, Resumed, Seeked, Progressed, Ended, Release, Tick)
            )
            feed(action)
    feed(Ended(SRC, None))
    feed(Release())
    for play_id in sorted(pending):  # every identification answers in the end
        answer(play_id, "found")

    assert src.idle, "every play ended, nothing held, nothing waits"
    opened: set[str] = set()
    watched: set[str] = set()
    for s in sent:
        base = s.play_id.split(".", 1)[0]
        assert base not in nothing, "nothing is sent for a play that stays unidentified"
        assert s.item in given_items.get(base, set())
        assert s.play_id not in watched, "at most one watched stop, and nothing after it"
        if s.verb is ScrobbleVerb.START:
            opened.add(s.play_id)
        else:
            opened.discard(s.play_id)
            if s.watched:
                watched.add(s.play_id)
    assert opened == set(), "every start is followed by a stop (or a later start)"
