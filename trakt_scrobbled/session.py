"""The scrobble state machine of one play: its events in, Trakt scrobble calls out.

Pure by design: `step` takes the current time as an argument and returns the calls to make,
so every rule here is tested without a clock, a network or a database. The driver feeds the
play's events, and calls `step(state, Tick(), now, policy)` at `deadline(state, policy)`.

The rules (DESIGN, "Scrobble semantics"): an identified play that plays is started at once,
whatever its progress; a seek while started is a new start at once (the outbox coalesces a
burst: an unsent start is replaced by a newer one); a pause, a stop, and the end of a play
that Trakt heard start from are stops; what happened before the play was identified is told
once it is, with its own position. A multi-episode file is one part per episode, its duration
split evenly: the part under the play head is the one scrobbled, and crossing a boundary stops
one part and starts the next. A part already recorded watched within the rewatch window (an
input, `Identified.seen`) closes with a stop under 80 %, so Trakt adds nothing to history.

Every `step` first catches up with time: a boundary crossed before `now` is acted on before
the event, so a late tick loses nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import assert_never

from .events import (
    Identified,
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

TRAKT_WATCHED_AT = 80.0
"""Trakt marks an item watched on any stop at or above this, whatever our threshold says."""


class Phase(StrEnum):
    IDLE = "idle"
    """No playback: before the first Play, or after a Stop."""
    PLAYING = "playing"
    PAUSED = "paused"


class Identity(StrEnum):
    """Where identification of the play stands."""

    IDENTIFYING = "identifying"
    IDENTIFIED = "identified"
    UNIDENTIFIED = "unidentified"
    """Identification gave up (not a movie or an episode, or not found): nothing is ever sent."""


class Reported(StrEnum):
    """What Trakt was last told about the current part of the play."""

    NOTHING = "nothing"
    STARTED = "started"
    PAUSED = "paused"
    """A stop under the threshold: Trakt holds a resume point, nothing is watched."""
    WATCHED = "watched"
    """A watched stop: the part is over for Trakt, nothing more is ever sent for it."""


@dataclass(frozen=True, slots=True)
class Policy:
    """The tunable numbers; the defaults follow Trakt's own rules (notes/trakt.md)."""

    watched_threshold: float = 80.0
    """Percent: a stop at or above it is a watch. Below 80 Trakt would not count it, so 80..100."""
    min_progress: float = 1.0
    """Percent: the least progress a stop may carry (Trakt answers 422 to a stop under 1 %)."""
    pause_cap: float = 79.9
    """Highest progress sent for an unwatched stop, so Trakt never records it as a watch."""

    def __post_init__(self) -> None:
        if not TRAKT_WATCHED_AT <= self.watched_threshold <= 100.0:
            raise ValueError("watched_threshold must be within 80..100")
        if not 1.0 <= self.min_progress <= self.pause_cap < TRAKT_WATCHED_AT:
            raise ValueError("need 1 <= min_progress <= pause_cap < 80")


@dataclass(frozen=True, slots=True)
class SessionState:
    """One play. After a Stop the last play's fields stay (phase IDLE) for `status`."""

    play_id: str | None
    items: tuple[TraktItem, ...]
    """What the play is, one item per part (episode); empty while not identified."""
    phase: Phase
    position: float
    """Seconds into the file, as sampled at `position_at`."""
    position_at: float
    """The monotonic time `position` was sampled; playing extrapolates from here."""
    duration: float | None
    """Seconds; None while unknown (no scrobble can be made without it)."""
    speed: float
    reported: Reported
    """What Trakt was told about part `part`."""
    identity: Identity = Identity.IDENTIFYING
    part: int = 0
    """Which part (episode) of the file the play head is in, as last reported."""
    watched: frozenset[int] = frozenset()
    """Parts this play recorded watched: never a second watch, nothing more sent for them."""
    seen: frozenset[int] = frozenset()
    """Parts recorded watched within the rewatch window before: their stops stay under 80."""
    owed: bool = False
    """A pause or stop came before the play was identified: it is told once identified."""

    @property
    def item(self) -> TraktItem | None:
        """The item of the current part; None while not identified."""
        return self.items[self.part] if self.part < len(self.items) else None


def initial() -> SessionState:
    return SessionState(
        play_id=None,
        items=(),
        phase=Phase.IDLE,
        position=0.0,
        position_at=0.0,
        duration=None,
        speed=1.0,
        reported=Reported.NOTHING,
    )


def position(state: SessionState, now: float) -> float:
    """Seconds into the item at `now`: extrapolated while playing, capped at the duration."""
    if state.phase is not Phase.PLAYING:
        return state.position
    pos = state.position + max(0.0, now - state.position_at) * state.speed
    if state.duration is not None:
        pos = min(pos, state.duration)
    return pos


def progress(state: SessionState, now: float) -> float | None:
    """Percent of the current part watched at `now` (0..100), None without a known duration."""
    if state.phase is Phase.IDLE or state.duration is None:
        return None
    return _part_percent(state, position(state, now), state.part)


def play_id_of(state: SessionState, part: int) -> str:
    """The id Trakt's calls for one part carry: each episode of a file is a play of its own."""
    return part_play_id(state.play_id or "", part)


def part_play_id(play_id: str, part: int) -> str:
    """`play_id_of` for a play known by its id only."""
    return play_id if part == 0 else f"{play_id}.{part + 1}"


def deadline(state: SessionState, policy: Policy) -> float | None:
    """When the driver must next call `step(..., Tick(), ...)`; None when nothing is pending.

    The only deadline is the next part boundary of a multi-episode file while it plays.
    After any `step(..., now, ...)` this is None or later than `now`.
    """
    del policy  # the rules with deadlines take no tunable number
    if (
        state.phase is not Phase.PLAYING
        or len(state.items) < 2
        or state.duration is None
        or state.speed <= 0.0
        or state.part >= len(state.items) - 1
    ):
        return None
    boundary = state.duration * (state.part + 1) / len(state.items)
    at = state.position_at + max(0.0, boundary - state.position) / state.speed
    return at if math.isfinite(at) else None


def step(
    state: SessionState, event: SessionEvent, now: float, policy: Policy
) -> tuple[SessionState, tuple[Scrobble, ...]]:
    """Apply `event` at monotonic time `now`; return the new state and the calls to make."""
    state, due = _catch_up(state, now, policy)
    state, sent = _apply(state, event, now, policy)
    state, later = _catch_up(state, now, policy)
    return state, due + sent + later


# --- internals ---------------------------------------------------------------------------------


def _apply(
    state: SessionState, event: SessionEvent, now: float, policy: Policy
) -> tuple[SessionState, tuple[Scrobble, ...]]:
    if isinstance(event, Play):
        return _play(state, event, now, policy)
    if isinstance(event, Identified):
        return _identified(state, event, policy)
    if state.phase is Phase.IDLE:
        return state, ()
    match event:
        case Stop(position=pos):
            return _stop(state, pos, now, policy)
        case Pause(position=pos):
            return _pause(state, pos, now, policy)
        case Resume(position=pos):
            at = _finite(pos, position(state, now))
            return replace(state, phase=Phase.PLAYING, position=at, position_at=now), ()
        case Seek(position=pos):
            return _seek(state, pos, now, policy)
        case Progress(position=pos, duration=dur, speed=speed):
            return replace(
                state,
                position=_finite(pos, position(state, now)),
                position_at=now,
                duration=_duration(dur) or state.duration,
                speed=state.speed if speed is None else _speed(speed, state.speed),
            ), ()
        case Tick():
            return state, ()
        case _:
            assert_never(event)


def _play(
    state: SessionState, event: Play, now: float, policy: Policy
) -> tuple[SessionState, tuple[Scrobble, ...]]:
    ended: tuple[Scrobble, ...] = ()
    if state.phase is not Phase.IDLE:
        state, ended = _stop(state, None, now, policy)
    items = event.items or ((event.item,) if event.item is not None else ())
    new = SessionState(
        play_id=event.play_id,
        items=items,
        phase=Phase.PAUSED if event.paused else Phase.PLAYING,
        position=_finite(event.position, 0.0),
        position_at=now,
        duration=_duration(event.duration),
        speed=_speed(event.speed, 1.0),
        reported=Reported.NOTHING,
        identity=Identity.IDENTIFIED if items else Identity.IDENTIFYING,
        seen=event.seen,
    )
    return replace(new, part=_part_at(new, new.position)), ended


def _identified(
    state: SessionState, event: Identified, policy: Policy
) -> tuple[SessionState, tuple[Scrobble, ...]]:
    if state.play_id is None:
        return state, ()  # no play yet: nothing to identify
    if state.identity is not Identity.IDENTIFYING:
        # Once known, the item is fixed (a change would split the play in two); only what
        # was watched recently may be learnt again (a restart re-checks it).
        return replace(state, seen=state.seen | event.seen), ()
    items = event.parts or ((event.item,) if event.item is not None else ())
    if not items:
        return replace(state, identity=Identity.UNIDENTIFIED, owed=False), ()
    state = replace(state, items=items, identity=Identity.IDENTIFIED, seen=event.seen)
    state = replace(state, part=_part_at(state, state.position))
    if state.owed and state.phase is not Phase.PLAYING and state.duration is not None:
        # Paused or stopped before it could be started: Trakt hears where, with its own
        # position (a resume point, or the watch).
        state, sent = _close(replace(state, owed=False), policy)
        return state, sent
    return replace(state, owed=False), ()


def _stop(
    state: SessionState, pos: float | None, now: float, policy: Policy
) -> tuple[SessionState, tuple[Scrobble, ...]]:
    state, sent = _move(state, _finite(pos, position(state, now)), now, policy)
    if state.reported is Reported.STARTED:
        state, closed = _close(state, policy)
        sent += closed
    elif state.identity is Identity.IDENTIFYING and state.phase is Phase.PLAYING:
        state = replace(state, owed=True)
    return replace(state, phase=Phase.IDLE), sent


def _pause(
    state: SessionState, pos: float | None, now: float, policy: Policy
) -> tuple[SessionState, tuple[Scrobble, ...]]:
    state, sent = _move(state, _finite(pos, position(state, now)), now, policy)
    was_playing = state.phase is Phase.PLAYING
    state = replace(state, phase=Phase.PAUSED)
    if state.reported is Reported.STARTED:
        state, closed = _close(state, policy)
        return state, sent + closed
    if state.identity is Identity.IDENTIFYING and was_playing:
        state = replace(state, owed=True)
    return state, sent


def _seek(
    state: SessionState, pos: float, now: float, policy: Policy
) -> tuple[SessionState, tuple[Scrobble, ...]]:
    state, sent = _move(state, _finite(pos, position(state, now)), now, policy)
    if state.phase is Phase.PLAYING and state.reported is Reported.STARTED:
        # A seek is a new start at once, with the new progress; a burst is coalesced by the
        # outbox (an unsent start is replaced by a newer one), so no debounce is needed.
        state, started = _start(state, now)
        sent += started
    return state, sent


def _move(
    state: SessionState, to: float, now: float, policy: Policy
) -> tuple[SessionState, tuple[Scrobble, ...]]:
    """The play head jumps to `to`: a part it leaves is stopped where it was left."""
    part = _part_at(state, to)
    sent: tuple[Scrobble, ...] = ()
    if part != state.part:
        if state.reported is Reported.STARTED:
            state = replace(state, position=position(state, now), position_at=now)
            state, sent = _close(state, policy)
        state = replace(state, part=part, reported=Reported.NOTHING)
    return replace(state, position=to, position_at=now), sent


def _close(state: SessionState, policy: Policy) -> tuple[SessionState, tuple[Scrobble, ...]]:
    """The stop of the current part; `state.position` is where it ended."""
    item = state.item
    if item is None or state.play_id is None or state.duration is None:
        return state, ()  # unreachable: callers checked
    play_id = play_id_of(state, state.part)
    pct = round(_part_percent(state, state.position, state.part), 2)
    fresh = state.part not in state.watched and state.part not in state.seen
    if pct >= policy.watched_threshold and fresh:
        scrobble = Scrobble(ScrobbleVerb.STOP, play_id, item, pct, watched=True)
        watched = state.watched | {state.part}
        return replace(state, reported=Reported.WATCHED, watched=watched), (scrobble,)
    # Under 1 % Trakt answers 422 and "watching" would dangle: send the least it takes. A part
    # watched recently stays under 80 %, so Trakt closes it without a second history entry.
    pct = min(max(pct, policy.min_progress), policy.pause_cap)
    scrobble = Scrobble(ScrobbleVerb.STOP, play_id, item, pct)
    return replace(state, reported=Reported.PAUSED), (scrobble,)


def _catch_up(
    state: SessionState, now: float, policy: Policy
) -> tuple[SessionState, tuple[Scrobble, ...]]:
    """Do what is due by `now`: cross a part boundary the play head passed, start a play."""
    if state.phase is not Phase.PLAYING or state.identity is not Identity.IDENTIFIED:
        return state, ()
    sent: tuple[Scrobble, ...] = ()
    for _ in range(len(state.items)):
        due = deadline(state, policy)
        if due is None or now < due or state.duration is None:
            break
        # Played over a boundary: the part is over where it ends, the next one starts there.
        # The deadline decides, not the extrapolated position, which float error may leave
        # short; a late tick crosses each boundary in turn, so no part is skipped.
        boundary = state.duration * (state.part + 1) / len(state.items)
        state = replace(state, position=boundary, position_at=due)
        if state.reported is Reported.STARTED:
            state, closed = _close(state, policy)
            sent += closed
        state = replace(state, part=state.part + 1, reported=Reported.NOTHING)
        if _startable(state):
            state, started = _start(state, due)
            sent += started
    if _startable(state):
        state, started = _start(state, now)
        sent += started
    return state, sent


def _startable(state: SessionState) -> bool:
    return (
        state.phase is Phase.PLAYING
        and state.identity is Identity.IDENTIFIED
        and state.duration is not None
        and state.part not in state.watched
        and state.reported in (Reported.NOTHING, Reported.PAUSED)
    )


def _start(state: SessionState, now: float) -> tuple[SessionState, tuple[Scrobble, ...]]:
    item = state.item
    pct = progress(state, now)
    if item is None or state.play_id is None or pct is None or state.part in state.watched:
        return state, ()
    scrobble = Scrobble(ScrobbleVerb.START, play_id_of(state, state.part), item, round(pct, 2))
    return replace(state, reported=Reported.STARTED), (scrobble,)


def _part_at(state: SessionState, pos: float) -> int:
    parts = max(1, len(state.items))
    if parts == 1 or state.duration is None:
        return 0
    return min(parts - 1, max(0, int(pos * parts // state.duration)))


def _part_percent(state: SessionState, pos: float, part: int) -> float:
    if state.duration is None:
        return 0.0
    parts = max(1, len(state.items))
    length = state.duration / parts
    return _percent(pos - part * length, length)


def _percent(pos: float, duration: float) -> float:
    return min(100.0, max(0.0, pos / duration * 100.0))


def _finite(value: float | None, fallback: float) -> float:
    """A player's number, unless it did not give one (None) or gave garbage (NaN)."""
    return fallback if value is None or math.isnan(value) else value


def _duration(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) and value > 0.0 else None


def _speed(value: float, fallback: float) -> float:
    return max(0.0, value) if math.isfinite(value) else fallback
