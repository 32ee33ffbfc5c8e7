"""Drives one session machine per player source: the impure shell around `session.step`.

It turns `PlayerEvent`s into session events, asks identification for the item (asynchronously,
so a slow search never holds back a pause), queues the machine's scrobbles in the outbox, and
wakes the machine at its deadlines (debounced seeks, the 1 % mark).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from trakt_scrobbled import session
from trakt_scrobbled.clock import Clock
from trakt_scrobbled.events import (
    Identified,
    MediaInfo,
    MediaType,
    Pause,
    Play,
    PlayerEvent,
    PlayerEventKind,
    Progress,
    Resume,
    Scrobble,
    Seek,
    SessionEvent,
    Stop,
    Tick,
    TraktItem,
)
from trakt_scrobbled.outbox import Outbox
from trakt_scrobbled.playstate import PlayStore, Snapshot

log = logging.getLogger(__name__)


class IdentificationResult(Protocol):
    @property
    def item(self) -> TraktItem | None: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def retry_later(self) -> bool: ...


class Identifies(Protocol):
    async def identify(self, media: MediaInfo) -> IdentificationResult: ...


@dataclass(frozen=True, slots=True)
class NowPlaying:
    """One source's playback, for `status`."""

    source: str
    label: str
    item: TraktItem | None
    phase: session.Phase
    progress: float | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class Ignored:
    """A play that was not scrobbled, and why (for `status`)."""

    at: float
    source: str
    label: str
    reason: str


@dataclass(slots=True)
class _Source:
    state: session.SessionState = field(default_factory=session.initial)
    media: MediaInfo | None = None
    reason: str | None = None
    timer: asyncio.TimerHandle | None = None
    saved: bool = False
    identify_task: asyncio.Task[None] | None = None


class Scrobbler:
    def __init__(
        self,
        outbox: Outbox,
        identifier: Identifies,
        clock: Clock,
        policy: session.Policy,
        *,
        plays: PlayStore | None = None,
        rewatch_window: float = 21600.0,
        new_play_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        identify_retry: float = 60.0,
    ) -> None:
        self._outbox = outbox
        self._identifier = identifier
        self._clock = clock
        self.policy = policy
        self._new_play_id = new_play_id
        self._identify_retry = identify_retry
        self._plays = plays
        self.rewatch_window = rewatch_window
        self._sources: dict[str, _Source] = {}
        self._ignored: deque[Ignored] = deque(maxlen=20)

    def use(self, identifier: Identifies, policy: session.Policy, rewatch_window: float) -> None:
        """A reloaded config: plays already running keep going under the new rules."""
        self._identifier = identifier
        self.policy = policy
        self.rewatch_window = rewatch_window

    def recover(self) -> int:
        """Finish the plays a previous run left open (killed, crashed, rebooted).

        Each ends where it was last seen, at the time it was last seen: a play that had
        crossed the watched threshold is recorded as watched then, the others just stopped.
        """
        if self._plays is None:
            return 0
        snapshots = self._plays.load()
        now = self._clock.monotonic()
        for snap in snapshots:
            _, actions = session.step(snap.revive(now), Stop(snap.position), now, self.policy)
            for action in actions:
                self._queue(snap.source, action, at=snap.saved_at)
            log.info(
                "%s: finished the play of %s left open by the last run",
                snap.source,
                snap.item.describe(),
            )
        self._plays.clear()
        return len(snapshots)

    def handle(self, event: PlayerEvent) -> None:
        """Take one player event; called on the event loop, returns at once."""
        src = self._sources.setdefault(event.source, _Source())
        if event.kind is PlayerEventKind.PLAY:
            self._begin(event, src)
            return
        converted = _convert(event)
        if converted is not None:
            self._step(event.source, src, converted)
        if event.kind is PlayerEventKind.STOP:
            self._cancel_identify(src)

    def _begin(self, event: PlayerEvent, src: _Source) -> None:
        media = event.media or MediaInfo()
        if src.state.phase is not session.Phase.IDLE and media == src.media:
            # The same item seen again (the adapter reconnected or was restarted by a
            # reload): the play goes on, it is not a new one.
            self._continue(event, src)
            return
        self._cancel_identify(src)
        duration = event.duration if event.duration is not None else media.duration
        play = Play(
            play_id=self._new_play_id(),
            item=None,
            position=event.position or 0.0,
            duration=duration,
            paused=event.paused,
            speed=event.speed,
        )
        src.media = media
        src.reason = "identifying"
        self._step(event.source, src, play)
        log.info("%s: playing %s", event.source, _media_label(media))
        src.identify_task = asyncio.get_running_loop().create_task(
            self._identify(event.source, src, play.play_id, media)
        )

    def _continue(self, event: PlayerEvent, src: _Source) -> None:
        source = event.source
        if event.position is not None:
            self._step(source, src, Progress(event.position, event.duration, event.speed))
        paused = src.state.phase is session.Phase.PAUSED
        if event.paused and not paused:
            self._step(source, src, Pause(event.position))
        elif not event.paused and paused:
            self._step(source, src, Resume(event.position))

    async def _identify(self, source: str, src: _Source, play_id: str, media: MediaInfo) -> None:
        while True:
            try:
                result = await self._identifier.identify(media)
            except Exception:
                log.exception("%s: identification failed", source)
                src.reason = "identification failed"
                return
            if src.state.play_id != play_id:
                return
            src.reason = result.reason
            if result.item is not None:
                log.info("%s: identified as %s", source, result.item.describe())
                self._step(source, src, Identified(result.item))
                return
            if not result.retry_later:
                reason = result.reason or "not identified"
                log.info("%s: not scrobbled: %s", source, reason)
                self._ignored.append(
                    Ignored(self._clock.time(), source, _media_label(media), reason)
                )
                return
            await self._clock.sleep(self._identify_retry)

    def _cancel_identify(self, src: _Source) -> None:
        if src.identify_task is not None and not src.identify_task.done():
            src.identify_task.cancel()
        src.identify_task = None

    def _step(self, source: str, src: _Source, event: SessionEvent) -> None:
        now = self._clock.monotonic()
        src.state, actions = session.step(src.state, event, now, self.policy)
        for action in actions:
            self._queue(source, action)
        self._save(source, src, now)
        self._arm(source, src)

    def _save(self, source: str, src: _Source, now: float) -> None:
        if self._plays is None:
            return
        state = src.state
        if state.phase is session.Phase.IDLE or state.item is None or state.play_id is None:
            if src.saved:
                self._plays.forget(source)
                src.saved = False
            return
        self._plays.save(
            Snapshot(
                source=source,
                play_id=state.play_id,
                item=state.item,
                phase=state.phase,
                position=session.position(state, now),
                duration=state.duration,
                speed=state.speed,
                reported=state.reported,
                saved_at=self._clock.time(),
            )
        )
        src.saved = True

    def _queue(self, source: str, action: Scrobble, *, at: float | None = None) -> None:
        keys: tuple[str, ...] = ()
        if action.watched:
            keys = watch_keys(action.item)
            when = self._clock.time() if at is None else at
            before = self._outbox.watched_since(keys, when - self.rewatch_window)
            if before is not None:
                log.info(
                    "%s: %s was already recorded watched %.0f min ago; not recording it twice",
                    source,
                    action.item.describe(),
                    (when - before) / 60,
                )
                self._outbox.note("suppressed", action.item.describe(), "already watched")
                return
        self._outbox.enqueue(action, at=at, watch_keys=keys)
        what = "watched" if action.watched else action.verb
        log.info(
            "%s: queued %s %s at %.2f%%", source, what, action.item.describe(), action.progress
        )

    def _arm(self, source: str, src: _Source) -> None:
        if src.timer is not None:
            src.timer.cancel()
            src.timer = None
        due = session.deadline(src.state, self.policy)
        if due is None:
            return
        delay = max(0.0, due - self._clock.monotonic())
        src.timer = asyncio.get_running_loop().call_later(delay, self._step, source, src, Tick())

    def ignored(self) -> list[Ignored]:
        """The latest plays that were not scrobbled, newest first."""
        return list(reversed(self._ignored))

    def now_playing(self) -> list[NowPlaying]:
        now = self._clock.monotonic()
        out = []
        for source, src in self._sources.items():
            if src.state.phase is session.Phase.IDLE:
                continue
            item = src.state.item
            out.append(
                NowPlaying(
                    source=source,
                    label=item.describe() if item else _media_label(src.media or MediaInfo()),
                    item=item,
                    phase=src.state.phase,
                    progress=session.progress(src.state, now),
                    reason=None if item else src.reason,
                )
            )
        return out

    async def aclose(self) -> None:
        """Stop timers and identification; sessions are left as they are."""
        tasks = []
        for src in self._sources.values():
            if src.timer is not None:
                src.timer.cancel()
            if src.identify_task is not None:
                src.identify_task.cancel()
                tasks.append(src.identify_task)
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def watch_keys(item: TraktItem) -> tuple[str, ...]:
    """Every id an item is known by: the same watch is found whichever id identified it."""
    if item.ids:
        kind = "movie" if item.media_type is MediaType.MOVIE else "episode"
        return tuple(f"{kind}:{k}:{v}" for k, v in item.ids.to_json().items())
    number = f"S{item.season}E{item.number}" if item.number is not None else f"A{item.number_abs}"
    return tuple(f"show:{k}:{v}:{number}" for k, v in item.show_ids.to_json().items())


def _convert(event: PlayerEvent) -> SessionEvent | None:
    match event.kind:
        case PlayerEventKind.PAUSE:
            return Pause(event.position)
        case PlayerEventKind.RESUME:
            return Resume(event.position)
        case PlayerEventKind.SEEK:
            return None if event.position is None else Seek(event.position)
        case PlayerEventKind.PROGRESS:
            if event.position is None:
                return None
            return Progress(event.position, event.duration, event.speed)
        case PlayerEventKind.STOP:
            return Stop(event.position)
    return None


def _media_label(media: MediaInfo) -> str:
    if media.path:
        return media.path.rsplit("/", 1)[-1]
    return media.title or "an unnamed item"
