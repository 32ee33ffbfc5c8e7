"""The whole life of the plays of one player source, pure: player events in, effects out.

A source (one mpv socket, one Kodi, one Plex player) has one current play, and may also hold:
- a play the previous run left open (`held`), until the source speaks again: the same item
  reported again goes on as the same play; anything else, or `Release` (the shell's timer),
  finishes it where it was last seen, at the time it was last seen;
- plays that ended before they were identified (`ended`, e.g. Trakt unreachable), each kept
  until its identification answers; then Trakt hears how it ended, at the time it ended.

The rules of one play are `session`'s; this module only routes events to the right play and
says what the shell must do (`Send` a scrobble, `Identify` a play). No I/O, no clock reads:
the shell gives `now` (monotonic) and `wall` (epoch seconds) to every `step`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from trakt_scrobbled import session
from trakt_scrobbled.events import (
    Ended,
    Identified,
    MediaInfo,
    Pause,
    Paused,
    Play,
    PlayerEvent,
    Playing,
    Progress,
    Progressed,
    Resume,
    Resumed,
    Scrobble,
    Seek,
    Seeked,
    SessionEvent,
    Stop,
    Tick,
)
from trakt_scrobbled.session import Identity, Phase, Policy, SessionState

# --- what the shell tells the lifecycle ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """Identification of play `play_id` is over: `identified.item` None means it gave up."""

    play_id: str
    identified: Identified


@dataclass(frozen=True, slots=True)
class Release:
    """The held play waited long enough for its player: finish it."""


LifecycleEvent = PlayerEvent | Answer | Release | Tick

# --- what the lifecycle tells the shell ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Queue `scrobble`; `at` is the wall time it happened, None for now."""

    scrobble: Scrobble
    at: float | None = None


@dataclass(frozen=True, slots=True)
class Identify:
    """Find out what play `play_id` is (and answer with `Answer`), trying again while it fails."""

    play_id: str
    media: MediaInfo


Effect = Send | Identify

# --- the state ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Kept:
    """A play that is not the current one but still owes Trakt something."""

    state: SessionState
    media: MediaInfo | None
    at: float
    """Wall time it was last seen (held) or ended (ended)."""


@dataclass(frozen=True, slots=True)
class Source:
    """Everything one player source's plays are."""

    prefix: str
    """Makes play ids unique across runs: the shell picks one per source and run."""
    current: SessionState = field(default_factory=session.initial)
    media: MediaInfo | None = None
    """What the player said about the current play."""
    held: Kept | None = None
    ended: tuple[Kept, ...] = ()
    serial: int = 0

    @property
    def idle(self) -> bool:
        """Nothing plays, nothing is held or waits: the shell may forget the source."""
        return self.current.phase is Phase.IDLE and self.held is None and not self.ended

    def wants(self, play_id: str) -> bool:
        """Whether an identification answer for `play_id` still matters."""
        return any(
            s.play_id == play_id and s.identity is Identity.IDENTIFYING for s in self._plays()
        )

    def _plays(self) -> list[SessionState]:
        kept = [k.state for k in self.ended]
        if self.held is not None:
            kept.append(self.held.state)
        return [self.current, *kept]


def recovered(
    prefix: str, held: Kept | None, ended: tuple[Kept, ...]
) -> tuple[Source, list[Effect]]:
    """A source as the previous run left it: its plays still being identified are asked again.

    `held.state` must be revived at this run's monotonic time (`position_at`).
    """
    src = Source(prefix, held=held, ended=ended)
    effects: list[Effect] = [
        Identify(k.state.play_id, k.media)
        for k in (*ended, *(() if held is None else (held,)))
        if k.state.identity is Identity.IDENTIFYING
        and k.state.play_id is not None
        and k.media is not None
    ]
    return src, effects


def deadline(src: Source, policy: Policy) -> float | None:
    """When the shell must next step the source with `Tick()`."""
    return session.deadline(src.current, policy)


def step(
    src: Source, event: LifecycleEvent, now: float, wall: float, policy: Policy
) -> tuple[Source, list[Effect]]:
    """Apply `event` at monotonic `now` (wall time `wall`); return the new source and effects."""
    effects: list[Effect] = []
    if isinstance(event, Answer):
        return _answer(src, event, now, policy)
    if isinstance(event, Release):
        return _finish_held(src, now, policy)
    if src.held is not None and not isinstance(event, Tick):
        if isinstance(event, Playing) and _same_media(src.held.media, event.media):
            return _adopt(src, event, now, policy)
        src, effects = _finish_held(src, now, policy)
    match event:
        case Playing():
            src, more = _playing(src, event, now, wall, policy)
        case Ended(position=pos):
            src, more = _end_current(src, Stop(pos), now, wall, policy)
        case Paused() | Resumed() | Seeked() | Progressed() | Tick():
            src, more = _current(src, _session_event(event), now, policy)
    return src, effects + more


# --- internals ---------------------------------------------------------------------------------


def _session_event(event: Paused | Resumed | Seeked | Progressed | Tick) -> SessionEvent:
    match event:
        case Paused(position=pos):
            return Pause(pos)
        case Resumed(position=pos):
            return Resume(pos)
        case Seeked(position=pos):
            return Seek(pos)
        case Progressed(position=pos, duration=dur, speed=speed):
            return Progress(pos, dur, speed)
        case Tick():
            return event


def _current(
    src: Source, event: SessionEvent, now: float, policy: Policy
) -> tuple[Source, list[Effect]]:
    state, sent = session.step(src.current, event, now, policy)
    return replace(src, current=state), [Send(s) for s in sent]


def _end_current(
    src: Source, stop: Stop, now: float, wall: float, policy: Policy
) -> tuple[Source, list[Effect]]:
    """The current play is over; if it owes Trakt a report but is not identified, keep it."""
    src, effects = _current(src, stop, now, policy)
    state = src.current
    if state.identity is Identity.IDENTIFYING and state.owed and state.play_id is not None:
        # The kept copy owes the report now; the current one is only the last play for status.
        kept = Kept(state, src.media, wall)
        src = replace(src, current=replace(state, owed=False), ended=(*src.ended, kept))
    return src, effects


def _playing(
    src: Source, event: Playing, now: float, wall: float, policy: Policy
) -> tuple[Source, list[Effect]]:
    if src.current.phase is not Phase.IDLE and event.media == src.media:
        # The same item seen again (the adapter reconnected or was restarted by a reload):
        # the play goes on, it is not a new one.
        return _continue(src, event, now, policy)
    effects: list[Effect] = []
    if src.current.phase is not Phase.IDLE:
        src, effects = _end_current(src, Stop(None), now, wall, policy)
    play_id = f"{src.prefix}-{src.serial + 1}"
    duration = event.duration if event.duration is not None else event.media.duration
    play = Play(
        play_id,
        None,
        event.position or 0.0,
        duration,
        paused=event.paused,
        speed=event.speed,
    )
    src = replace(src, serial=src.serial + 1, media=event.media)
    src, sent = _current(src, play, now, policy)
    return src, [*effects, *sent, Identify(play_id, event.media)]


def _continue(
    src: Source, event: Playing, now: float, policy: Policy
) -> tuple[Source, list[Effect]]:
    effects: list[Effect] = []
    if event.position is not None:
        src, effects = _current(
            src, Progress(event.position, event.duration, event.speed), now, policy
        )
    paused = src.current.phase is Phase.PAUSED
    more: list[Effect] = []
    if event.paused and not paused:
        src, more = _current(src, Pause(event.position), now, policy)
    elif not event.paused and paused:
        src, more = _current(src, Resume(event.position), now, policy)
    return src, effects + more


def _adopt(src: Source, event: Playing, now: float, policy: Policy) -> tuple[Source, list[Effect]]:
    """The player outlived the last run and still plays the same thing: the play goes on."""
    held = src.held
    if held is None:
        return src, []
    src = replace(src, held=None, current=held.state, media=event.media)
    src, effects = _continue(src, event, now, policy)
    more: list[Effect] = []
    if held.state.identity is Identity.IDENTIFYING and held.state.play_id is not None:
        more.append(Identify(held.state.play_id, event.media))
    src, ticked = _current(src, Tick(), now, policy)
    return src, effects + more + ticked


def _finish_held(src: Source, now: float, policy: Policy) -> tuple[Source, list[Effect]]:
    """End the play the last run left open, where and when it was last seen."""
    held = src.held
    if held is None:
        return src, []
    state, sent = session.step(held.state, Stop(held.state.position), now, policy)
    src = replace(src, held=None)
    if state.identity is Identity.IDENTIFYING and state.owed and state.play_id is not None:
        src = replace(src, ended=(*src.ended, Kept(state, held.media, held.at)))
    return src, [Send(s, held.at) for s in sent]


def _answer(src: Source, answer: Answer, now: float, policy: Policy) -> tuple[Source, list[Effect]]:
    for kept in src.ended:
        if kept.state.play_id == answer.play_id:
            _, sent = session.step(kept.state, answer.identified, now, policy)
            rest = tuple(k for k in src.ended if k is not kept)
            src = replace(src, ended=rest)
            if src.current.play_id == answer.play_id:  # for status: what it turned out to be
                src = replace(
                    src, current=session.step(src.current, answer.identified, now, policy)[0]
                )
            return src, [Send(s, kept.at) for s in sent]
    held = src.held
    if held is not None and held.state.play_id == answer.play_id:
        state, sent = session.step(held.state, answer.identified, now, policy)
        return replace(src, held=replace(held, state=state)), [Send(s, held.at) for s in sent]
    if src.current.play_id == answer.play_id:
        return _current(src, answer.identified, now, policy)
    return src, []


def _same_media(saved: MediaInfo | None, seen: MediaInfo) -> bool:
    """Whether a player reports the item of a saved play (the duration may be re-measured)."""
    if saved is None:
        return False
    if saved.path or seen.path:
        return saved.path == seen.path
    return replace(saved, duration=None) == replace(seen, duration=None)
