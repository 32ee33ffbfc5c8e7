"""The scrobble state machine: one player session's events in, Trakt scrobble calls out.

Pure by design: `step` takes the current time as an argument and returns the calls to make,
so every rule here is tested without a clock, a network or a database. The driver (the app)
feeds player events, and calls `step(state, Tick(), now, policy)` at `deadline(state, policy)`.

Every `step` first catches up with time: a debounced seek or the 1 % mark that fell due before
`now` is acted on (with the progress at `now`) before the event, so a late tick loses nothing.
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


class Reported(StrEnum):
    """What Trakt was last told about the current play."""

    NOTHING = "nothing"
    STARTED = "started"
    PAUSED = "paused"
    """A stop under the threshold: Trakt holds a resume point, nothing is watched."""
    WATCHED = "watched"
    """A watched stop: the play is over for Trakt, nothing more is ever sent for it."""


@dataclass(frozen=True, slots=True)
class Policy:
    """The tunable numbers; the defaults follow Trakt's own rules (notes/trakt.md)."""

    watched_threshold: float = 80.0
    """Percent: a stop at or above it is a watch. Below 80 Trakt would not count it, so 80..100."""
    seek_debounce: float = 2.0
    """Seconds after the last seek of a burst before its start is sent."""
    min_progress: float = 1.0
    """Percent under which nothing is sent: Trakt answers 422 to a stop under 1 %."""
    pause_cap: float = 79.9
    """Highest progress sent for an unwatched stop, so Trakt never records it as a watch."""

    def __post_init__(self) -> None:
        if not TRAKT_WATCHED_AT <= self.watched_threshold <= 100.0:
            raise ValueError("watched_threshold must be within 80..100")
        if not 1.0 <= self.min_progress <= self.pause_cap < TRAKT_WATCHED_AT:
            raise ValueError("need 1 <= min_progress <= pause_cap < 80")
        if not self.seek_debounce >= 0.0:
            raise ValueError("seek_debounce must be >= 0")


@dataclass(frozen=True, slots=True)
class SessionState:
    """One player session. After a Stop the last play's fields stay (phase IDLE) for `status`."""

    play_id: str | None
    item: TraktItem | None
    """None while the play is not identified: such a play never produces a Scrobble."""
    phase: Phase
    position: float
    """Seconds, as sampled at `position_at`."""
    position_at: float
    """The monotonic time `position` was sampled; playing extrapolates from here."""
    duration: float | None
    """Seconds; None while unknown (no scrobble can be made without it)."""
    speed: float
    reported: Reported
    seek_due: float | None
    """When the debounced start of a seek burst falls due; None when no seek is pending."""


def initial() -> SessionState:
    return SessionState(
        play_id=None,
        item=None,
        phase=Phase.IDLE,
        position=0.0,
        position_at=0.0,
        duration=None,
        speed=1.0,
        reported=Reported.NOTHING,
        seek_due=None,
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
    """Percent watched at `now` (0..100), None without a playback or a known duration."""
    if state.phase is Phase.IDLE or state.duration is None:
        return None
    return _percent(position(state, now), state.duration)


def deadline(state: SessionState, policy: Policy) -> float | None:
    """When the driver must next call `step(..., Tick(), ...)`; None when nothing is pending.

    After any `step(..., now, ...)` this is None or later than `now`.
    """
    if state.phase is not Phase.PLAYING:
        return None
    if state.seek_due is not None and (state.reported is Reported.STARTED or _startable(state)):
        return state.seek_due
    if not _startable(state) or state.duration is None or state.speed <= 0.0:
        return None
    target = state.duration * policy.min_progress / 100.0
    if state.position >= target:
        return state.position_at
    at = state.position_at + (target - state.position) / state.speed
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
            return _seek(state, pos, now, policy), ()
        case Progress(position=pos, duration=dur, speed=speed):
            return replace(
                state,
                position=_finite(pos, position(state, now)),
                position_at=now,
                duration=_duration(dur) or state.duration,
                speed=state.speed if speed is None else _speed(speed, state.speed),
            ), ()
        case Identified(item=item):
            # Once Trakt heard of the play its item is fixed: a change would split it in two.
            if state.reported is Reported.NOTHING:
                return replace(state, item=item), ()
            return state, ()
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
    new = SessionState(
        play_id=event.play_id,
        item=event.item,
        phase=Phase.PAUSED if event.paused else Phase.PLAYING,
        position=_finite(event.position, 0.0),
        position_at=now,
        duration=_duration(event.duration),
        speed=_speed(event.speed, 1.0),
        reported=Reported.NOTHING,
        seek_due=None,
    )
    return new, ended


def _stop(
    state: SessionState, pos: float | None, now: float, policy: Policy
) -> tuple[SessionState, tuple[Scrobble, ...]]:
    at = _finite(pos, position(state, now))
    state = replace(state, position=at, position_at=now, seek_due=None)
    state, sent = _close(state, policy) if state.reported is Reported.STARTED else (state, ())
    return replace(state, phase=Phase.IDLE), sent


def _pause(
    state: SessionState, pos: float | None, now: float, policy: Policy
) -> tuple[SessionState, tuple[Scrobble, ...]]:
    at = _finite(pos, position(state, now))
    state = replace(state, phase=Phase.PAUSED, position=at, position_at=now, seek_due=None)
    if state.reported is Reported.STARTED:
        return _close(state, policy)
    return state, ()


def _seek(state: SessionState, pos: float, now: float, policy: Policy) -> SessionState:
    state = replace(state, position=_finite(pos, position(state, now)), position_at=now)
    if state.phase is Phase.PLAYING and state.reported is Reported.STARTED:
        return replace(state, seek_due=now + policy.seek_debounce)
    return state


def _close(state: SessionState, policy: Policy) -> tuple[SessionState, tuple[Scrobble, ...]]:
    """The stop of a started play; `state.position` is where it ended."""
    if state.item is None or state.play_id is None or state.duration is None:
        return state, ()  # unreachable: a started play has all three
    pct = round(_percent(state.position, state.duration), 2)
    if pct >= policy.watched_threshold:
        scrobble = Scrobble(ScrobbleVerb.STOP, state.play_id, state.item, pct, watched=True)
        return replace(state, reported=Reported.WATCHED), (scrobble,)
    # Under 1 % Trakt answers 422 and the "watching" would dangle: send the least it takes.
    pct = min(max(pct, policy.min_progress), policy.pause_cap)
    scrobble = Scrobble(ScrobbleVerb.STOP, state.play_id, state.item, pct)
    return replace(state, reported=Reported.PAUSED), (scrobble,)


def _catch_up(
    state: SessionState, now: float, policy: Policy
) -> tuple[SessionState, tuple[Scrobble, ...]]:
    """Do what fell due by `now`: a debounced seek's start, or the start at the 1 % mark."""
    if state.phase is not Phase.PLAYING:
        return state, ()
    if state.seek_due is not None and now >= state.seek_due:
        state = replace(state, seek_due=None)
        if state.reported is Reported.STARTED:
            # A seek back under 1 % still updates "watching"; it says 1 % rather than a 422.
            return _start(state, now, policy, at_least=policy.min_progress)
    if state.seek_due is None and _startable(state):
        pct = progress(state, now)
        if pct is not None and round(pct, 2) >= policy.min_progress:
            return _start(state, now, policy, at_least=0.0)
    return state, ()


def _startable(state: SessionState) -> bool:
    """Whether the START rule applies, short of the 1 % mark and the seek debounce."""
    return (
        state.phase is Phase.PLAYING
        and state.item is not None
        and state.duration is not None
        and state.reported in (Reported.NOTHING, Reported.PAUSED)
    )


def _start(
    state: SessionState, now: float, policy: Policy, *, at_least: float
) -> tuple[SessionState, tuple[Scrobble, ...]]:
    pct = progress(state, now)
    if state.item is None or state.play_id is None or pct is None:
        return state, ()  # unreachable: callers checked
    pct = max(round(pct, 2), at_least)
    scrobble = Scrobble(ScrobbleVerb.START, state.play_id, state.item, pct)
    return replace(state, reported=Reported.STARTED), (scrobble,)


def _percent(pos: float, duration: float) -> float:
    return min(100.0, max(0.0, pos / duration * 100.0))


def _finite(value: float | None, fallback: float) -> float:
    """A player's number, unless it did not give one (None) or gave garbage (NaN)."""
    return fallback if value is None or math.isnan(value) else value


def _duration(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) and value > 0.0 else None


def _speed(value: float, fallback: float) -> float:
    return max(0.0, value) if math.isfinite(value) else fallback
