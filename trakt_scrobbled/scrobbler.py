"""Drives one session machine per player source: the impure shell around `session.step`.

It turns `PlayerEvent`s into session events, asks identification for the item (asynchronously,
so a slow search never holds back a pause), queues the machine's scrobbles in the outbox, and
wakes the machine at its deadlines (debounced seeks, the 1 % mark).

Plays survive what would otherwise cost a watch: a play that ends before it could be identified
(Trakt unreachable) is kept, in SQLite, until it is; a play the previous run left open is taken
over when its player reports it again after a restart, and finished where it was last seen
when the player does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Protocol

from trakt_scrobbled import session
from trakt_scrobbled.clock import Clock
from trakt_scrobbled.events import (
    Ended,
    Identified,
    MediaInfo,
    MediaType,
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
    ScrobbleVerb,
    Seek,
    Seeked,
    SessionEvent,
    Stop,
    Tick,
    TraktItem,
)
from trakt_scrobbled.outbox import Outbox
from trakt_scrobbled.playstate import PlayStore, Snapshot

log = logging.getLogger(__name__)

FIRST_IDENTIFY_RETRY = 2.0
"""Seconds before identification is tried again after Trakt was unreachable; doubles each time."""


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
    file: str
    """What the player plays, as it names it (a file name, a title)."""
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
        """The longest wait between two identification tries."""
        self._plays = plays
        self.rewatch_window = rewatch_window
        self._sources: dict[str, _Source] = {}
        self._held: dict[str, Snapshot] = {}
        """Plays the previous run left open, by source, until that source speaks again."""
        self._hold_timer: asyncio.TimerHandle | None = None
        self._ended: dict[str, Snapshot] = {}
        """Plays over before they could be identified, by play id, until they are."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._ignored: deque[Ignored] = deque(maxlen=20)

    def use(self, identifier: Identifies, policy: session.Policy, rewatch_window: float) -> None:
        """A reloaded config: plays already running keep going under the new rules."""
        self._identifier = identifier
        self.policy = policy
        self.rewatch_window = rewatch_window

    def recover(self, hold: float = 0.0) -> int:
        """Finish the plays a previous run left open (killed, crashed, rebooted).

        Each ends where it was last seen, at the time it was last seen: a play that had
        crossed the watched threshold is recorded as watched then, the others just stopped.
        With `hold` > 0 a play waits that many seconds for its player to report it again
        (the player outlived the daemon): then it simply goes on, as the same play, and ends
        when it really ends. Plays that ended unidentified are identified again.
        """
        if self._plays is None:
            return 0
        snapshots = self._plays.load()
        for snap in snapshots:
            if snap.ended:
                if snap.media is None:
                    self._plays.discard(snap)  # nothing to identify it by
                    continue
                self._ended[snap.play_id] = snap
                self._spawn(
                    self._identify(snap.source, None, snap.play_id, snap.media),
                    name=snap.play_id,
                )
            elif hold > 0:
                self._held[snap.source] = snap
            else:
                self._finish(snap)
        if self._held:
            loop = asyncio.get_running_loop()
            self._hold_timer = loop.call_later(hold, self._release_held)
        return len(snapshots)

    def _release_held(self) -> None:
        self._hold_timer = None
        held, self._held = self._held, {}
        for snap in held.values():
            self._finish(snap)

    def _finish(self, snap: Snapshot) -> None:
        """End a play of the previous run where and when it was last seen."""
        if self._plays is None:
            return
        if snap.item is None:
            if snap.media is not None:
                self._keep(snap.source, snap.play_id, snap.media, replace(snap, ended=True))
            self._plays.discard(snap)
            return
        now = self._clock.monotonic()
        _, actions = session.step(snap.revive(now), Stop(snap.position), now, self.policy)
        for action in actions:
            self._queue(snap.source, action, at=snap.saved_at)
        self._plays.discard(snap)
        log.info(
            "%s: finished the play of %s left open by the last run",
            snap.source,
            snap.item.describe(),
        )

    def _adopt(self, snap: Snapshot, event: Playing, src: _Source) -> None:
        """The player outlived the last run and still plays the same thing: the play goes on."""
        media = event.media
        src.state = snap.revive(self._clock.monotonic())
        src.media = media
        src.saved = True
        log.info(
            "%s: %s goes on (the play the last run left open)", event.source, _media_label(media)
        )
        if snap.item is None:
            src.reason = "identifying"
            src.identify_task = self._spawn(
                self._identify(event.source, src, snap.play_id, media), name=snap.play_id
            )
        self._continue(event, src)
        self._step(event.source, src, Tick())

    def handle(self, event: PlayerEvent) -> None:
        """Take one player event; called on the event loop, returns at once."""
        src = self._sources.setdefault(event.source, _Source())
        held = self._held.pop(event.source, None)
        if held is not None:
            if isinstance(event, Playing) and _same_media(held.media, event.media):
                self._adopt(held, event, src)
                return
            self._finish(held)
        if isinstance(event, Playing):
            self._begin(event, src)
            return
        converted = _convert(event)
        before = src.state
        self._step(event.source, src, converted)
        if isinstance(event, Ended):
            self._ended_unidentified(event.source, src, before, src.state.position)

    def _begin(self, event: Playing, src: _Source) -> None:
        media = event.media
        if src.state.phase is not session.Phase.IDLE and media == src.media:
            # The same item seen again (the adapter reconnected or was restarted by a
            # reload): the play goes on, it is not a new one.
            self._continue(event, src)
            return
        before = src.state
        self._ended_unidentified(
            event.source, src, before, session.position(before, self._clock.monotonic())
        )
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
        src.identify_task = self._spawn(
            self._identify(event.source, src, play.play_id, media), name=play.play_id
        )
        self._step(event.source, src, play)
        log.info("%s: playing %s", event.source, _media_label(media))

    def _ended_unidentified(
        self, source: str, src: _Source, before: session.SessionState, position: float
    ) -> None:
        """A play is over: if it is still being identified, it is kept until it is."""
        task, src.identify_task = src.identify_task, None
        if task is None or task.done():
            return
        media = src.media
        if (
            before.phase is session.Phase.IDLE
            or before.item is not None
            or before.play_id is None
            or media is None
        ):
            task.cancel()
            return
        snap = Snapshot(
            source=source,
            play_id=before.play_id,
            item=None,
            phase=session.Phase.IDLE,
            position=position,
            duration=before.duration,
            speed=before.speed,
            reported=before.reported,
            saved_at=self._clock.time(),
            media=media,
            ended=True,
        )
        self._keep(source, before.play_id, media, snap)

    def _keep(self, source: str, play_id: str, media: MediaInfo, snap: Snapshot) -> None:
        """Remember an ended, unidentified play (durably) and identify it until it is."""
        if self._plays is not None:
            self._plays.save(snap)
        known = play_id in self._ended
        self._ended[play_id] = snap
        log.info(
            "%s: %s ended before it could be identified; kept until it is",
            source,
            _media_label(media),
        )
        # The play's own identification usually runs on; after a restart it starts anew.
        if not known and not any(t.get_name() == play_id for t in self._tasks):
            self._spawn(self._identify(source, None, play_id, media), name=play_id)

    def _spawn(
        self, coro: Coroutine[object, object, None], name: str | None = None
    ) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _continue(self, event: Playing, src: _Source) -> None:
        source = event.source
        if event.position is not None:
            self._step(source, src, Progress(event.position, event.duration, event.speed))
        paused = src.state.phase is session.Phase.PAUSED
        if event.paused and not paused:
            self._step(source, src, Pause(event.position))
        elif not event.paused and paused:
            self._step(source, src, Resume(event.position))

    async def _identify(
        self, source: str, src: _Source | None, play_id: str, media: MediaInfo | None
    ) -> None:
        """Identify play `play_id`, trying again while Trakt cannot be reached.

        The play may end meanwhile (it is then in `_ended`): the watch is recorded once known.
        """
        delay = min(FIRST_IDENTIFY_RETRY, self._identify_retry)
        while media is not None:
            try:
                result = await self._identifier.identify(media)
            except Exception:
                log.exception("%s: identification failed", source)
                result = None
            ended = self._ended.get(play_id)
            live = src is not None and ended is None and src.state.play_id == play_id
            if not live and ended is None:
                return  # replaced by another play, and nothing of it was worth keeping
            item = None if result is None else result.item
            if item is not None:
                if ended is not None:
                    self._record_ended(ended, item)
                elif src is not None:
                    log.info("%s: identified as %s", source, item.describe())
                    src.reason = None
                    self._step(source, src, Identified(item))
                return
            reason = "identification failed" if result is None else result.reason
            if src is not None and live:
                src.reason = reason
            if result is None or not result.retry_later:
                reason = reason or "not identified"
                log.info("%s: not scrobbled: %s", source, reason)
                self._ignored.append(
                    Ignored(self._clock.time(), source, _media_label(media), reason)
                )
                if ended is not None:
                    self._drop_ended(ended)
                return
            await self._clock.sleep(delay)
            delay = min(delay * 2, self._identify_retry)

    def _record_ended(self, snap: Snapshot, item: TraktItem) -> None:
        """A play identified after it ended: a watch if it ended past the threshold."""
        log.info("%s: identified as %s after it ended", snap.source, item.describe())
        duration = snap.duration
        if duration is not None and duration > 0:
            pct = round(min(100.0, max(0.0, snap.position / duration * 100.0)), 2)
            if pct >= self.policy.watched_threshold:
                watch = Scrobble(ScrobbleVerb.STOP, snap.play_id, item, pct, watched=True)
                self._queue(snap.source, watch, at=snap.saved_at)
        self._drop_ended(snap)

    def _drop_ended(self, snap: Snapshot) -> None:
        self._ended.pop(snap.play_id, None)
        if self._plays is not None:
            self._plays.discard(snap)

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
        identifying = src.identify_task is not None and not src.identify_task.done()
        if (
            state.phase is session.Phase.IDLE
            or state.play_id is None
            or (state.item is None and not identifying)
        ):
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
                media=src.media,
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
                    file=_media_label(src.media or MediaInfo()),
                    item=item,
                    phase=src.state.phase,
                    progress=session.progress(src.state, now),
                    reason=None if item else src.reason,
                )
            )
        return out

    async def aclose(self) -> None:
        """Stop timers and identification; plays are left as they are (and as saved)."""
        if self._hold_timer is not None:
            self._hold_timer.cancel()
        for src in self._sources.values():
            if src.timer is not None:
                src.timer.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
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


def _same_media(saved: MediaInfo | None, seen: MediaInfo | None) -> bool:
    """Whether a player reports the item of a saved play (the duration may be re-measured)."""
    if saved is None or seen is None:
        return False
    if saved.path or seen.path:
        return saved.path == seen.path
    return replace(saved, duration=None) == replace(seen, duration=None)


def _convert(event: Paused | Resumed | Seeked | Progressed | Ended) -> SessionEvent:
    match event:
        case Paused(position=pos):
            return Pause(pos)
        case Resumed(position=pos):
            return Resume(pos)
        case Seeked(position=pos):
            return Seek(pos)
        case Progressed(position=pos, duration=dur, speed=speed):
            return Progress(pos, dur, speed)
        case Ended(position=pos):
            return Stop(pos)


def _media_label(media: MediaInfo) -> str:
    if media.path:
        return media.path.rsplit("/", 1)[-1]
    return media.title or "an unnamed item"
