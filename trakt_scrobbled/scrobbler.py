"""The impure shell around `lifecycle`: timers, tasks and storage, nothing that decides.

Player events go to the pure lifecycle of their source; its effects are carried out here:
scrobbles are queued in the outbox, identifications run as tasks (a slow search never holds
back a pause) and answer the lifecycle when done, plays are saved in SQLite so that a restart
finishes or continues them, and the lifecycle's deadlines are waited for on the injected clock.
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

from trakt_scrobbled import lifecycle, session
from trakt_scrobbled.clock import Clock
from trakt_scrobbled.events import (
    Identified,
    Ids,
    MediaInfo,
    MediaType,
    PlayerEvent,
    Playing,
    Scrobble,
    Tick,
    TraktItem,
)
from trakt_scrobbled.lifecycle import Answer, Identify, Kept, LifecycleEvent, Release, Send
from trakt_scrobbled.outbox import Outbox
from trakt_scrobbled.playstate import PlayStore, Snapshot

log = logging.getLogger(__name__)

FIRST_IDENTIFY_RETRY = 2.0
"""Seconds before identification is tried again after Trakt was unreachable; doubles each time."""

RECENT_PLAYS = 20
"""Ended plays remembered for `status` once their source is forgotten."""


class IdentificationResult(Protocol):
    @property
    def item(self) -> TraktItem | None: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def retry_later(self) -> bool: ...
    @property
    def episodes(self) -> tuple[int, ...]: ...


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
    state: lifecycle.Source
    reason: str | None = None
    """Why the current play is not (yet) scrobbled, for `status`."""
    timer: asyncio.Task[None] | None = None
    saved: set[str] = field(default_factory=set)
    """Keys of this source's snapshots in the play store."""
    lane: Outbox | None = None
    """The account's outbox the router gave this source's newest play; None: no account."""
    routed: str = ""
    """Why no account takes the newest play (a route's reason), for `status`."""
    who: Who = (None, None)
    """The user (name, id) the player named for the newest play."""
    pinned: dict[str, _Pinned] = field(default_factory=dict)
    """Each play's lane and user, fixed when it started: a Plex player handed to another
    user finishes the first user's play on the first user's account; the user is kept with
    the play's snapshot so that a restart routes it the same way."""

    def lane_of(self, play_id: str | None) -> Outbox | None:
        pinned = self.pinned.get(play_id or "")
        return self.lane if pinned is None else pinned.lane

    def who_played(self, play_id: str | None) -> Who:
        pinned = self.pinned.get(play_id or "")
        return self.who if pinned is None else pinned.who


Who = tuple[str | None, str | None]


@dataclass(frozen=True, slots=True)
class _Pinned:
    lane: Outbox | None
    who: Who


Lane = Callable[[str, str | None, str | None], tuple[Outbox | None, str]]
"""(source, user, user id) -> the account's outbox (None: not scrobbled) and why not."""


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
        lane: Lane | None = None,
    ) -> None:
        """`lane` picks each play's account outbox (the household); without it every play
        goes to `outbox`, the one implicit account."""
        self._outbox = outbox
        self._lane: Lane = lane or (lambda source, user, user_id: (outbox, ""))
        self._identifier = identifier
        self._clock = clock
        self.policy = policy
        self._new_play_id = new_play_id
        self._identify_retry = identify_retry
        """The longest wait between two identification tries."""
        self._plays = plays
        self.rewatch_window = rewatch_window
        self._sources: dict[str, _Source] = {}
        self._identifying: dict[str, asyncio.Task[None]] = {}
        """Identification tasks by play id."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._hold_timer: asyncio.Task[None] | None = None
        self._back = asyncio.Event()
        """Set (and replaced) when Trakt is known to answer again: waits for a retry end."""
        self._ignored: deque[Ignored] = deque(maxlen=20)
        self._unsaved: dict[int, tuple[str, _Source]] = {}
        """Sources whose snapshot is written on the next loop turn (after the POST left)."""

    def use_lanes(self, lane: Lane) -> None:
        """A reloaded [accounts]: new plays are routed by it; plays running keep their lane."""
        self._lane = lane

    def use(self, identifier: Identifies, policy: session.Policy, rewatch_window: float) -> None:
        """A reloaded config: plays already running keep going under the new rules."""
        self._identifier = identifier
        self.policy = policy
        self.rewatch_window = rewatch_window

    def trakt_is_back(self) -> None:
        """Trakt answered again after an outage: plays waiting to be identified try at once."""
        back, self._back = self._back, asyncio.Event()
        back.set()

    @property
    def sources(self) -> int:
        """Player sources with a play, held or waiting; idle ones are forgotten."""
        return len(self._sources)

    # --- restart ---------------------------------------------------------------------------

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
        now = self._clock.monotonic()
        by_source: dict[str, tuple[Kept | None, list[Kept]]] = {}
        for snap in snapshots:
            held, ended = by_source.get(snap.source, (None, []))
            kept = Kept(snap.revive(now), snap.media, snap.saved_at)
            if snap.ended:
                ended.append(kept)
            else:
                held = kept
            by_source[snap.source] = (held, ended)
        users = {snap.play_id: (snap.user, snap.user_id) for snap in snapshots}
        for source, (held, ended) in by_source.items():
            state, effects = lifecycle.recovered(self._new_play_id(), held, tuple(ended))
            src = _Source(state, saved={s.key for s in snapshots if s.source == source})
            # Each recovered play goes to the account its user was routed to (a Plex account
            # of the household), by today's rules; the newest play's route is the source's.
            for kept in [*ended, *([held] if held is not None else [])]:
                play_id = kept.state.play_id or ""
                who = users.get(play_id, (None, None))
                src.lane, src.routed = self._lane(source, *who)
                src.who = who
                src.pinned[play_id] = _Pinned(src.lane, who)
            if not src.pinned:
                src.lane, src.routed = self._lane(source, None, None)
            self._sources[source] = src
            self._apply(source, src, effects)
            if held is not None and held.state.item is not None:
                # A watch queued just before the kill may not be in the snapshot yet.
                lane = src.lane_of(held.state.play_id)
                self._feed(
                    source, src, Answer(held.state.play_id or "", self._identified(held, lane))
                )
            if hold <= 0:
                self._feed(source, src, Release())
        if hold > 0 and any(s.state.held is not None for s in self._sources.values()):
            self._hold_timer = self._spawn(self._release_held(hold), name="hold")
        return len(snapshots)

    def _identified(self, held: Kept, lane: Outbox | None) -> Identified:
        """The recovered play as identified (see `_seen`)."""
        items = held.state.items
        return Identified(
            items[0], parts=items, seen=self._seen(items, lane, held.state.play_id or "")
        )

    async def _release_held(self, hold: float) -> None:
        await self._clock.sleep(hold)
        self._hold_timer = None
        for source, src in list(self._sources.items()):
            if src.state.held is not None:
                self._feed(source, src, Release())

    # --- events ----------------------------------------------------------------------------

    def handle(self, event: PlayerEvent) -> None:
        """Take one player event; called on the event loop, returns at once."""
        source = event.source
        src = self._sources.get(source)
        if src is None:
            src = self._sources[source] = _Source(lifecycle.Source(self._new_play_id()))
            src.lane, src.routed = self._lane(source, None, None)
        if isinstance(event, Playing):
            self._route(source, src, event)
        self._feed(source, src, event, save_after_send=True)

    def _route(self, source: str, src: _Source, event: Playing) -> None:
        """Pick the account of the play `event` starts; the plays before keep theirs."""
        self._pin_plays(src)
        src.who = (event.user, event.user_id)
        lane, why = self._lane(source, event.user, event.user_id)
        if lane is not src.lane or why != src.routed:
            if lane is None:
                log.info("%s: not scrobbled: %s", _who(source), why)
                self._ignored.append(
                    Ignored(self._clock.time(), source, _media_label(event.media), why)
                )
            elif src.lane is not None or src.routed:
                log.info("%s: plays for account %s", _who(source), lane.account or "(implicit)")
        src.lane, src.routed = lane, why

    def _pin_plays(self, src: _Source) -> None:
        """Every play the source has gets the lane it has now; plays gone are forgotten."""
        state = src.state
        plays = [state.current, *(k.state for k in state.ended)]
        if state.held is not None:
            plays.append(state.held.state)
        alive = {p.play_id for p in plays if p.play_id is not None}
        for play_id in alive:
            src.pinned.setdefault(play_id, _Pinned(src.lane, src.who))
        for play_id in [p for p in src.pinned if p not in alive]:
            del src.pinned[play_id]

    def _feed(
        self,
        source: str,
        src: _Source,
        event: LifecycleEvent,
        *,
        save_after_send: bool = False,
    ) -> None:
        old = src.state
        src.state, effects = lifecycle.step(
            src.state, event, self._clock.monotonic(), self._clock.time(), self.policy
        )
        self._apply(source, src, effects)
        self._pin_plays(src)
        kept_same = old.ended == src.state.ended and old.held == src.state.held
        if save_after_send and kept_same and any(isinstance(e, Send) for e in effects):
            # A player event's scrobble: the sender was woken by the enqueue, its POST leaves
            # before this commit (an fsync). A crash in between leaves the previous snapshot,
            # which a restart finishes no worse (a watch already queued is `seen`, not doubled).
            self._save_soon(source, src)
        else:
            self._save(source, src)
        # Logged once stored: what a line says (a play kept until identified) survives a kill
        # that follows it.
        self._log_change(source, src, old)
        self._arm(source, src)
        if src.state.idle and src.timer is None and self._sources.get(source) is src:
            # Ended plays of a Plex player id seen once must not pile up: a bounded list of
            # recent plays is what `status` keeps.
            del self._sources[source]

    def _log_change(self, source: str, src: _Source, old: lifecycle.Source) -> None:
        """What changed for a person reading the log: once per change, never per event."""
        new = src.state
        play_id = new.current.play_id
        adopted = False
        if old.held is not None and new.held is None:
            adopted = play_id is not None and play_id == old.held.state.play_id
            if adopted:
                log.info(
                    "%s: %s goes on (the play the last run left open)",
                    _who(source),
                    _media_label(new.media),
                )
            else:
                log.info(
                    "%s: finished the play of %s left open by the last run",
                    _who(source),
                    _media_label(old.held.media),
                )
        if play_id != old.current.play_id and play_id is not None and not adopted:
            src.reason = "identifying" if new.current.item is None else None
            log.info("%s: playing %s", _who(source), _media_label(new.media))
        known = {k.state.play_id for k in old.ended}
        for kept in new.ended:
            if kept.state.play_id not in known:
                log.info(
                    "%s: %s ended before it could be identified; kept until it is",
                    _who(source),
                    _media_label(kept.media),
                )

    def _apply(self, source: str, src: _Source, effects: list[lifecycle.Effect]) -> None:
        for effect in effects:
            match effect:
                case Send(scrobble=scrobble, at=at):
                    self._queue(source, src, scrobble, at)
                case Identify(play_id=play_id, media=media):
                    task = self._identifying.get(play_id)
                    if task is None or task.done():
                        self._identifying[play_id] = self._spawn(
                            self._identify(source, play_id, media), name=play_id
                        )

    def _spawn(
        self, coro: Coroutine[object, object, None], name: str | None = None
    ) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- identification --------------------------------------------------------------------

    async def _identify(self, source: str, play_id: str, media: MediaInfo) -> None:
        """Identify play `play_id`, trying again while Trakt cannot be reached.

        The play may end meanwhile: the lifecycle keeps it, and tells Trakt once it is known.
        """
        delay = min(FIRST_IDENTIFY_RETRY, self._identify_retry)
        try:
            while True:
                try:
                    result: IdentificationResult | None = await self._identifier.identify(media)
                except Exception:
                    log.exception("%s: identification failed", _who(source))
                    result = None
                src = self._sources.get(source)
                if src is None or not src.state.wants(play_id):
                    return  # replaced by another play, and nothing of it was worth keeping
                item = None if result is None else result.item
                if item is not None and result is not None:
                    parts = _parts(item, media.episodes or result.episodes)
                    ended = any(k.state.play_id == play_id for k in src.state.ended)
                    log.info(
                        "%s: identified as %s%s",
                        _who(source),
                        " + ".join(p.describe() for p in parts),
                        " after it ended" if ended else "",
                    )
                    if src.state.current.play_id == play_id:
                        src.reason = None
                    lane = src.lane_of(play_id)
                    answer = Identified(item, parts=parts, seen=self._seen(parts, lane, play_id))
                    self._feed(source, src, Answer(play_id, answer))
                    return
                reason = "identification failed" if result is None else result.reason
                if src.state.current.play_id == play_id:
                    src.reason = reason
                if result is None or not result.retry_later:
                    reason = reason or "not identified"
                    log.info("%s: not scrobbled: %s", _who(source), reason)
                    self._ignored.append(
                        Ignored(self._clock.time(), source, _media_label(media), reason)
                    )
                    self._feed(source, src, Answer(play_id, Identified(None)))
                    return
                await self._retry_wait(delay)
                delay = min(delay * 2, self._identify_retry)
        finally:
            if self._identifying.get(play_id) is asyncio.current_task():
                del self._identifying[play_id]

    async def _retry_wait(self, delay: float) -> None:
        """Wait `delay` on the clock, or less if Trakt is known to be back meanwhile."""
        back = asyncio.ensure_future(self._back.wait())
        sleep = asyncio.ensure_future(self._clock.sleep(delay))
        try:
            await asyncio.wait({back, sleep}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (back, sleep):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _seen(
        self, parts: tuple[TraktItem, ...], lane: Outbox | None, play_id: str
    ) -> frozenset[int]:
        """The parts recorded watched (on the play's account) within the rewatch window, and,
        whatever the window, those whose watch this very play queued: a play identified again
        after a kill (held, or ended unidentified) whose snapshot had not caught up."""
        if lane is None:
            return frozenset()
        since = self._clock.time() - self.rewatch_window
        return frozenset(
            n
            for n, part in enumerate(parts)
            if lane.watched_since(watch_keys(part), since) is not None
            or lane.play_watched(session.part_play_id(play_id, n))
        )

    # --- storage ---------------------------------------------------------------------------

    def _queue(self, source: str, src: _Source, action: Scrobble, at: float | None) -> None:
        lane = src.lane_of(action.play_id)
        if lane is None:
            log.debug("%s: %s not queued: no account takes this play", _who(source), action.verb)
            return
        keys = watch_keys(action.item) if action.watched else ()
        lane.enqueue(action, at=at, watch_keys=keys)
        what = "watched" if action.watched else action.verb
        log.info(
            "%s: queued %s %s at %.2f%%",
            _who(source),
            what,
            action.item.describe(),
            action.progress,
        )

    def _save_soon(self, source: str, src: _Source) -> None:
        if not self._unsaved:
            asyncio.get_running_loop().call_soon(self._save_unsaved)
        self._unsaved[id(src)] = (source, src)

    def _save_unsaved(self) -> None:
        unsaved, self._unsaved = self._unsaved, {}
        for source, src in unsaved.values():
            self._save(source, src)

    def _save(self, source: str, src: _Source) -> None:
        """Keep the store in step with the lifecycle: what a restart needs, nothing more."""
        if self._plays is None:
            return
        wall = self._clock.time()
        now = self._clock.monotonic()
        state = src.state
        wanted: dict[str, Snapshot] = {}

        def snapshot(
            play: session.SessionState, at: float, media: MediaInfo | None, *, ended: bool
        ) -> Snapshot:
            user, user_id = src.who_played(play.play_id)
            return Snapshot(source, play, at, media, ended=ended, user=user, user_id=user_id)

        current = state.current
        if (
            current.phase is not session.Phase.IDLE
            and current.play_id is not None
            and current.identity is not session.Identity.UNIDENTIFIED
        ):
            moved = replace(current, position=session.position(current, now))
            wanted[source] = snapshot(moved, wall, state.media, ended=False)
        elif state.held is not None:
            held = state.held
            wanted[source] = snapshot(held.state, held.at, held.media, ended=False)
        for kept in state.ended:
            snap = snapshot(kept.state, kept.at, kept.media, ended=True)
            wanted[snap.key] = snap
        self._plays.update(
            [snap for key, snap in wanted.items() if key == source or key not in src.saved],
            sorted(src.saved - wanted.keys()),
        )
        src.saved = set(wanted)

    # --- time ------------------------------------------------------------------------------

    def _arm(self, source: str, src: _Source) -> None:
        if src.timer is not None and src.timer is not asyncio.current_task():
            src.timer.cancel()
        src.timer = None
        due = lifecycle.deadline(src.state, self.policy)
        if due is None:
            return
        delay = max(0.0, due - self._clock.monotonic())
        src.timer = self._spawn(self._wake(source, src, delay), name=f"due-{source}")

    async def _wake(self, source: str, src: _Source, delay: float) -> None:
        await self._clock.sleep(delay)
        src.timer = None
        if self._sources.get(source) is src:
            self._feed(source, src, Tick())

    # --- status ----------------------------------------------------------------------------

    def ignored(self) -> list[Ignored]:
        """The latest plays that were not scrobbled, newest first."""
        return list(reversed(self._ignored))

    def now_playing(self) -> list[NowPlaying]:
        now = self._clock.monotonic()
        out = []
        for source, src in self._sources.items():
            state = src.state.current
            if state.phase is session.Phase.IDLE:
                continue
            item = state.item
            media = src.state.media or MediaInfo()
            out.append(
                NowPlaying(
                    source=source,
                    label=item.describe() if item else _media_label(media),
                    file=_media_label(media),
                    item=item,
                    phase=state.phase,
                    progress=session.progress(state, now),
                    reason=src.routed if src.lane is None else None if item else src.reason,
                )
            )
        return out

    async def aclose(self) -> None:
        """Stop timers and identification; plays are left as they are (and as saved)."""
        self._save_unsaved()
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


def _parts(item: TraktItem, episodes: tuple[int, ...]) -> tuple[TraktItem, ...]:
    """The episodes of a multi-episode file, one item each; a single item otherwise."""
    numbers = sorted(set(episodes))
    if (
        item.media_type is not MediaType.EPISODE
        or len(numbers) < 2
        or item.number not in numbers
        or not item.show_ids
    ):
        return (item,)
    return tuple(item if n == item.number else replace(item, ids=Ids(), number=n) for n in numbers)


def _who(source: str) -> str:
    """A source as log lines name it: an mpv socket by its file name, not its whole path
    (the adapter logs the full path once, when it connects)."""
    player, sep, where = source.partition(":")
    if player == "mpv" and sep and "/" in where:
        return f"mpv:{where.rsplit('/', 1)[-1]}"
    return source


def _media_label(media: MediaInfo | None) -> str:
    if media is None:
        return "an unnamed item"
    if media.path:
        return media.path.rsplit("/", 1)[-1]
    return media.title or "an unnamed item"
