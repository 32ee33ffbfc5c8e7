"""Jellyfin and Emby: live through the server's WebSocket, or told by webhooks.

Live mode (an API key, no plugin): the server pushes, once subscribed with `SessionsStart`, the
full list of its sessions whenever one changes; each session's `NowPlayingItem` and `PlayState`
are compared with what we knew. `/Sessions` is read on every (re)connect so a play that went on
meanwhile is continued, never restarted; one the server no longer shows gets `gone_after`
seconds to come back (a restarted server forgets its sessions until the clients report in).
A stopped session shows no position any more: the stop is placed at the last report,
extrapolated (clients report every few seconds).

Webhook mode: Jellyfin's Webhook plugin (Generic destination, the README's template) posts
`PlaybackStart`/`PlaybackProgress`/`PlaybackStop` to `POST /jellyfin/SECRET`; Emby Premiere
posts `playback.start/pause/unpause/stop` to `POST /emby/SECRET`. A stop repeated, or a late
progress after it, never opens a second play: whether a play counts is the session machine's
call, made once. A stop that never came (the plugin does not retry) ends the play once it runs
`OVERRUN` past its end.

Both servers are one protocol (Emby is Jellyfin's ancestor): `Flavour` switches the few
differences. Ids come first (`ProviderIds`), numbers from the server; users are filtered like
Plex accounts (`users` listed by name, or the key's own user / the server's administrators).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import socket
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from trakt_scrobbled.clock import Clock, SystemClock
from trakt_scrobbled.events import (
    Ended,
    EndReason,
    Ids,
    MediaInfo,
    MediaType,
    Paused,
    PlayerEvent,
    Playing,
    Progressed,
    Resumed,
    Seeked,
)
from trakt_scrobbled.logonce import LogOnce
from trakt_scrobbled.players import Connection, Emit, Route, doing_label, emit_safely
from trakt_scrobbled.players.jellyfin_server import (
    Flavour,
    MediaServer,
    MediaServerError,
    MediaServerUnauthorized,
    Owner,
)
from trakt_scrobbled.players.playhead import extrapolate
from trakt_scrobbled.players.plex import (
    AccountFilter,
    _dict,
    _key_text,
    _non_negative,
    _positive,
    _text,
)

if TYPE_CHECKING:
    from trakt_scrobbled.config import MediaServerConfig

__all__ = [
    "Flavour",
    "Malformed",
    "MediaServerLive",
    "MediaServerWebhooks",
    "build_jellyfin",
    "parse_message",
    "read_item",
    "read_webhook_item",
]

log = logging.getLogger(__name__)

TICKS = 10_000_000
"""Jellyfin and Emby count time in 100 ns ticks."""
SEEK_TOLERANCE = 10.0
"""Seconds a reported position may be off the extrapolated one without being a seek."""
ENDED_GUARD = 6 * 3600.0
"""Seconds a stopped play stays stopped against late progress or repeated stops of it."""
FIRST_RETRY = 0.25
MAX_RETRY = 15.0
"""Seconds: reconnect backoff doubles from FIRST_RETRY up to this."""
REFUSED_RETRY = 60.0
"""Seconds between tries while the key is refused."""
STABLE = 5.0
"""Seconds a connection must last for the backoff to start over."""
GONE_AFTER = 60.0
"""Seconds a play the server no longer shows may take to come back before it ends."""
CHECK_EVERY = 1.0
OVERRUN = 600.0
"""Seconds a webhook play may run past its end with no stop before it is taken as ended (the
plugin does not retry a lost `PlaybackStop`; Emby sends no progress at all)."""
ABANDONED = 12 * 3600.0
"""Seconds a webhook play without a runtime (or paused) may go without news before it ends."""
REAP_EVERY = 30.0
OWNER_RETRY = 60.0
"""Seconds between tries to learn the server's administrators (webhook mode, no `users`)."""
RECENT = 3600.0
MAX_KNOWN = 256
"""Players (and ended plays) remembered; the oldest are forgotten first."""
MAX_SECONDS = 7 * 24 * 3600.0
"""A position or a runtime past a week is a broken value, not a long film."""
MAX_EPISODES = 20
"""Episodes one multi-episode file may span; more is a broken `EpisodeNumberEnd`."""

_TYPES = {"movie": MediaType.MOVIE, "episode": MediaType.EPISODE}


# --- reading what the servers send ---------------------------------------------------------------


def _ticks(value: object) -> float | None:
    """100 ns ticks as seconds; None unless a number from 0 to a week (no item is longer)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value) / TICKS
    except (ValueError, OverflowError):
        return None
    return seconds if math.isfinite(seconds) and 0 <= seconds <= MAX_SECONDS else None


def _flag(value: object) -> bool:
    """A template renders booleans as `true`/`True`/`"true"`: all of them are true."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def _imdb(value: object) -> str | None:
    text = _text(value)
    if text is None:
        return None
    text = text.strip()
    return text if text.startswith("tt") and text[2:].isascii() and text[2:].isdecimal() else None


def _ids(imdb: object, tmdb: object, tvdb: object) -> Ids:
    return Ids(imdb=_imdb(imdb), tmdb=_positive(tmdb), tvdb=_positive(tvdb))


def _provider_ids(value: object) -> Ids:
    """`ProviderIds` (`{"Imdb": "tt…", "Tmdb": "603", "Tvdb": "…"}`), keys in any case."""
    found = {str(k).lower(): v for k, v in _dict(value).items()}
    return _ids(found.get("imdb"), found.get("tmdb"), found.get("tvdb"))


def _media(
    media_type: MediaType,
    *,
    title: object,
    year: object,
    show: object,
    season: object,
    episode: object,
    episode_end: object,
    ids: Ids,
    duration: float | None,
    path: object = None,
) -> MediaInfo:
    first = _non_negative(episode)
    last = _non_negative(episode_end)
    multi = (
        media_type is MediaType.EPISODE
        and first is not None
        and last is not None
        and first < last <= first + MAX_EPISODES
    )
    media = MediaInfo(
        path=_text(path),
        title=_text(title),
        year=_positive(year),
        media_type=media_type,
        show_title=_text(show) if media_type is MediaType.EPISODE else None,
        season=_non_negative(season) if media_type is MediaType.EPISODE else None,
        episode=first if media_type is MediaType.EPISODE else None,
        # A multi-episode file's own ids name its first episode only: it is found by numbers.
        ids=Ids() if multi else ids,
        duration=duration if duration else None,
    )
    if multi and first is not None and last is not None:
        media = _with_episodes(media, tuple(range(first, last + 1)))
    return media


def _with_episodes(media: MediaInfo, episodes: tuple[int, ...]) -> MediaInfo:
    """Every episode of a multi-episode file, for the lifecycle to split the play by.

    `MediaInfo.episodes` comes with the lifecycle's multi-episode support; before it, the
    file is its first episode.
    """
    if "episodes" in getattr(MediaInfo, "__dataclass_fields__", {}):
        extra: dict[str, Any] = {"episodes": episodes}
        return replace(media, **extra)
    return media


def read_item(item: Mapping[str, Any]) -> MediaInfo | str:
    """A `BaseItemDto` (a session's `NowPlayingItem`, Emby's webhook `Item`), or why not."""
    media_type = _TYPES.get(str(item.get("Type")).lower())
    if media_type is None:
        return "media_type"  # trailers, music, live TV, home videos...
    return _media(
        media_type,
        title=item.get("Name"),
        year=item.get("ProductionYear"),
        show=item.get("SeriesName"),
        season=item.get("ParentIndexNumber"),
        episode=item.get("IndexNumber"),
        episode_end=item.get("IndexNumberEnd"),
        ids=_provider_ids(item.get("ProviderIds")),
        duration=_ticks(item.get("RunTimeTicks")),
        path=item.get("Path"),
    )


def read_webhook_item(payload: Mapping[str, Any]) -> MediaInfo | str:
    """The item of a Jellyfin Webhook plugin post (the README's template), or why not."""
    media_type = _TYPES.get(str(payload.get("ItemType")).lower())
    if media_type is None:
        return "media_type"
    return _media(
        media_type,
        title=payload.get("Name"),
        year=payload.get("Year"),
        show=payload.get("SeriesName"),
        season=payload.get("SeasonNumber"),
        episode=payload.get("EpisodeNumber"),
        episode_end=payload.get("EpisodeNumberEnd"),
        ids=_ids(
            payload.get("Provider_imdb"), payload.get("Provider_tmdb"), payload.get("Provider_tvdb")
        ),
        duration=_ticks(payload.get("RunTimeTicks")),
    )


def _item_key(item_id: object, media: MediaInfo) -> str:
    """What tells one item from another on a player: the server's item id, else what it is."""
    if (text := _key_text(item_id)) is not None:
        return f"id:{text[:64]}"
    ids = media.ids.to_json()
    return f"what:{media.media_type}/{sorted(ids.items())}/{media.show_title}/{media.season}/" + (
        f"{media.episode}/{media.title}"
    )


def _source(flavour: Flavour, device: object, fallback: object) -> str | None:
    text = _key_text(device) or _key_text(fallback)
    return f"{flavour.value}:{text[:128]}" if text is not None else None


# --- plays, whoever tells about them -------------------------------------------------------------


@dataclass(slots=True)
class _Track:
    key: str
    media: MediaInfo
    position: float
    at: float
    paused: bool
    user: str
    device: str
    report: object = None
    """The server's last report of this play, so the same one seen twice is not a new one."""


@dataclass(frozen=True, slots=True)
class _Seen:
    device: str
    user: str
    at: float


class _Plays:
    """Each player's play, as observations of it arrive: turns them into player events."""

    def __init__(self, flavour: Flavour, clock: Clock) -> None:
        self.flavour = flavour
        self.clock = clock
        self.emit: Emit | None = None
        self.tracks: dict[str, _Track] = {}
        self._ended: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._seen: OrderedDict[str, _Seen] = OrderedDict()

    def observe(
        self,
        source: str,
        key: str,
        media: MediaInfo,
        position: float | None,
        paused: bool,
        *,
        start: bool,
        user: str,
        device: str,
        report: object = None,
    ) -> str:
        """`source` plays `key` at `position`; `start`: a fresh start (not a late progress)."""
        now = self.clock.monotonic()
        self._saw(source, device, user, now)
        if position is not None and media.duration is not None:
            position = min(position, media.duration)
        track = self.tracks.get(source)
        if track is not None and track.key != key:
            self.end(source, EndReason.REPLACED, None)
            track = None
        if track is None:
            ended_at = self._ended.get((source, key))
            if not start and ended_at is not None and now - ended_at < ENDED_GUARD:
                return "ignored:ended"  # a late progress of a play already stopped
            self._ended.pop((source, key), None)
            at = position if position is not None else 0.0
            self.tracks[source] = _Track(key, media, at, now, paused, user, device, report)
            log.info(
                "%s: %s (%s) plays %s",
                self.flavour.value,
                device,
                user,
                media.show_title or media.title or "an item",
            )
            self._send(
                Playing(
                    source,
                    media,
                    position=at,
                    duration=media.duration,
                    paused=paused,
                    user=user if user != "?" else None,
                )
            )
            return "accepted"
        if report is not None and report == track.report:
            return "accepted"  # the same report again (another session changed)
        track.report = report
        if position is None:
            position = self.estimate(track)
        moved = abs(position - self.estimate(track)) > SEEK_TOLERANCE
        self._remember(track, position)
        if paused and not track.paused:
            track.paused = True
            self._send(Paused(source, position))
        elif not paused and track.paused:
            track.paused = False
            self._send(Resumed(source, position))
        elif moved:
            self._send(Seeked(source, position))
        elif not paused:
            self._send(Progressed(source, position, media.duration))
        return "accepted"

    def stop(self, source: str, key: str, position: float | None, *, completed: bool) -> str:
        """`source` stopped `key`; a stop of what it no longer plays is ignored."""
        track = self.tracks.get(source)
        if track is None or track.key != key:
            return "ignored:not_playing"
        duration = track.media.duration
        if completed and duration is not None:
            position = duration
        elif position is not None and duration is not None:
            position = min(position, duration)
        self.end(source, EndReason.STOPPED, position)
        return "accepted"

    def end(self, source: str, reason: EndReason, position: float | None) -> None:
        track = self.tracks.pop(source, None)
        if track is None:
            return
        if position is None:
            position = self.estimate(track)
        self._ended[(source, track.key)] = self.clock.monotonic()
        self._ended.move_to_end((source, track.key))
        while len(self._ended) > MAX_KNOWN:
            self._ended.popitem(last=False)
        self._send(Ended(source, position, reason))

    def reap(self) -> None:
        """End the plays whose stop surely got lost: far past their end, or silent for hours."""
        now = self.clock.monotonic()
        for source, track in list(self.tracks.items()):
            ran = track.position + (0.0 if track.paused else now - track.at)
            duration = track.media.duration
            overran = not track.paused and duration is not None and ran >= duration + OVERRUN
            if overran or now - track.at >= ABANDONED:
                log.info("%s: %s sent no stop; its play ends", self.flavour.value, source)
                self.end(source, EndReason.GONE, None)

    def estimate(self, track: _Track) -> float:
        """The last known position, extrapolated while playing, capped at the duration."""
        return extrapolate(
            track.position,
            track.at,
            self.clock.monotonic(),
            moving=not track.paused,
            duration=track.media.duration,
        )

    def _remember(self, track: _Track, position: float) -> None:
        track.position = position
        track.at = self.clock.monotonic()

    def _send(self, event: PlayerEvent) -> None:
        emit = self.emit
        if emit is not None:
            emit_safely(emit, event)

    def _saw(self, source: str, device: str, user: str, now: float) -> None:
        self._seen.pop(source, None)
        self._seen[source] = _Seen(device, user, now)
        while len(self._seen) > MAX_KNOWN:
            self._seen.popitem(last=False)

    def connections(self) -> list[Connection]:
        now = self.clock.monotonic()
        out: list[Connection] = []
        for source, seen in list(self._seen.items()):
            track = self.tracks.get(source)
            if track is None and now - seen.at > RECENT:
                del self._seen[source]
                continue
            doing = "idle" if track is None else doing_label(track.media, paused=track.paused)
            out.append(Connection(source, f"{seen.device} ({seen.user}): {doing}"))
        return out


class _Users:
    """Whose plays count: `users` by name, else the owner (the key's user or the admins)."""

    def __init__(self, users: Sequence[str]) -> None:
        self.filter = AccountFilter(users)
        self.owner: Owner | None = None

    @property
    def needs_owner(self) -> bool:
        return not self.filter

    def allows(self, name: str | None, user_id: str | None) -> bool | None:
        """None: not known yet (the owner was not learnt)."""
        if self.filter:
            return self.filter.allows(name, own=False)
        if self.owner is None:
            return None
        return user_id is not None and user_id in self.owner.ids


class _Counts:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def outcome(self, outcome: str) -> str:
        kind, _, reason = outcome.partition(":")
        if kind == "ignored" and reason:
            self.counts[reason] = self.counts.get(reason, 0) + 1
        return outcome


# --- webhook mode --------------------------------------------------------------------------------


class _JellyfinEvent(StrEnum):
    START = "PlaybackStart"
    PROGRESS = "PlaybackProgress"
    STOP = "PlaybackStop"


class _EmbyEvent(StrEnum):
    START = "playback.start"
    PAUSE = "playback.pause"
    UNPAUSE = "playback.unpause"
    STOP = "playback.stop"
    PROGRESS = "playback.progress"


_JELLYFIN_EVENTS = frozenset(e.value for e in _JellyfinEvent)
_EMBY_EVENTS = frozenset(e.value for e in _EmbyEvent)


class MediaServerWebhooks:
    """Every player the server's webhooks mention; one source (`jellyfin:<DeviceId>`) each."""

    def __init__(
        self,
        flavour: Flavour,
        *,
        secret: str,
        users: Sequence[str] = (),
        server: Callable[[], MediaServer] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.name = flavour.value
        self._flavour = flavour
        self._secret = secret
        self._users = _Users(users)
        self._server = server
        self._plays = _Plays(flavour, clock if clock is not None else SystemClock())
        self._counts = _Counts()
        self._said = LogOnce(log)

    async def run(self, emit: Emit) -> None:
        """Take webhooks until cancelled; learns the owner first when no `users` are listed."""
        self._plays.emit = emit
        try:
            if self._users.needs_owner and self._server is not None:
                await self._learn_owner(self._server)
            while True:
                await self._plays.clock.sleep(REAP_EVERY)
                self._plays.reap()
        finally:
            self._plays.emit = None

    async def _learn_owner(self, make: Callable[[], MediaServer]) -> None:
        while self._users.owner is None:
            try:
                async with make() as server:
                    self._users.owner = await server.owner()
                log.info(
                    "%s: scrobbling the plays of %s", self.name, ", ".join(self._users.owner.names)
                )
                return
            except MediaServerError as err:
                self._said.once(
                    "owner", logging.WARNING, "%s: %s; plays wait for it to answer", self.name, err
                )
            await self._plays.clock.sleep(OWNER_RETRY)

    def connections(self) -> list[Connection]:
        return self._plays.connections()

    def ignored_counts(self) -> Mapping[str, int]:
        return dict(self._counts.counts)

    def routes(self) -> tuple[Route, ...]:
        """`POST /jellyfin/SECRET` (or `/emby/SECRET`)."""
        return (Route(self.name, self._secret, self.handle),) if self._secret else ()

    def handle(self, payload: Mapping[str, Any]) -> str:
        """Take one webhook's payload; returns at once and never raises."""
        try:
            if not isinstance(payload, Mapping):
                outcome = "ignored:malformed"
            elif self._plays.emit is None:
                outcome = "ignored:not_running"
            elif self._flavour is Flavour.JELLYFIN:
                outcome = self._jellyfin(payload)
            else:
                outcome = self._emby(payload)
        except Exception:
            log.exception("%s: could not handle a webhook", self.name)
            outcome = "ignored:malformed"
        return self._counts.outcome(outcome)

    def _user_allowed(self, name: str | None, user_id: str | None) -> str | None:
        allowed = self._users.allows(name, user_id)
        if allowed is None:
            return "ignored:owner_unknown"
        return None if allowed else "ignored:user"

    def _jellyfin(self, p: Mapping[str, Any]) -> str:
        event = p.get("NotificationType")
        if not isinstance(event, str) or event not in _JELLYFIN_EVENTS:
            return "ignored:event"
        user = _text(p.get("NotificationUsername"))
        if (refused := self._user_allowed(user, _key_text(p.get("UserId")))) is not None:
            return refused
        media = read_webhook_item(p)
        if isinstance(media, str):
            return f"ignored:{media}"
        source = _source(self._flavour, p.get("DeviceId"), p.get("UserId"))
        if source is None:
            return "ignored:no_player"
        key = _item_key(p.get("ItemId"), media)
        position = _ticks(p.get("PlaybackPositionTicks"))
        if event == _JellyfinEvent.STOP:
            return self._plays.stop(
                source, key, position, completed=_flag(p.get("PlayedToCompletion"))
            )
        return self._plays.observe(
            source,
            key,
            media,
            position,
            _flag(p.get("IsPaused")),
            start=event == _JellyfinEvent.START,
            user=user or "?",
            device=_text(p.get("DeviceName")) or _text(p.get("ClientName")) or "player",
        )

    def _emby(self, p: Mapping[str, Any]) -> str:
        event = p.get("Event")
        if not isinstance(event, str) or event not in _EMBY_EVENTS:
            return "ignored:event"
        user = _dict(p.get("User"))
        name = _text(user.get("Name"))
        if (refused := self._user_allowed(name, _key_text(user.get("Id")))) is not None:
            return refused
        item = _dict(p.get("Item"))
        media = read_item(item)
        if isinstance(media, str):
            return f"ignored:{media}"
        session = _dict(p.get("Session"))
        source = _source(self._flavour, session.get("DeviceId"), user.get("Id"))
        if source is None:
            return "ignored:no_player"
        key = _item_key(item.get("Id"), media)
        info = _dict(p.get("PlaybackInfo"))
        position = _ticks(info.get("PositionTicks"))
        if event == _EmbyEvent.STOP:
            completed = _flag(info.get("PlayedToCompletion"))
            return self._plays.stop(source, key, position, completed=completed)
        paused = event == _EmbyEvent.PAUSE
        if event == _EmbyEvent.PROGRESS:
            paused = _flag(_dict(session.get("PlayState")).get("IsPaused")) or _flag(
                info.get("IsPaused")
            )
        return self._plays.observe(
            source,
            key,
            media,
            position,
            paused,
            start=event == _EmbyEvent.START,
            user=name or "?",
            device=_text(session.get("DeviceName")) or _text(session.get("Client")) or "player",
        )


# --- live mode -----------------------------------------------------------------------------------


class Malformed(ValueError):
    """A WebSocket message that is not what the server documents."""


@dataclass(frozen=True, slots=True)
class _Message:
    kind: str
    data: object


def parse_message(text: str) -> _Message:
    """`{"MessageType": …, "Data": …}`, or `Malformed`."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise Malformed("not JSON") from err
    if not isinstance(data, dict) or not isinstance(data.get("MessageType"), str):
        raise Malformed("no MessageType")
    return _Message(data["MessageType"][:64], data.get("Data"))


class MediaServerLive:
    """Every player of one server, through its WebSocket; one source per device."""

    def __init__(
        self,
        flavour: Flavour,
        connect: Callable[[], MediaServer],
        users: Sequence[str] = (),
        *,
        clock: Clock | None = None,
        gone_after: float = GONE_AFTER,
        first_retry: float = FIRST_RETRY,
        max_retry: float = MAX_RETRY,
        refused_retry: float = REFUSED_RETRY,
    ) -> None:
        self.name = flavour.value
        self._flavour = flavour
        self._connect = connect
        self._users = _Users(users)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._plays = _Plays(flavour, self._clock)
        self._counts = _Counts()
        self._said = LogOnce(log)
        self._gone_after = gone_after
        self._first_retry = first_retry
        self._max_retry = max_retry
        self._refused_retry = refused_retry
        self._connected = False
        self._keepalive: float | None = None
        self._confirmed: set[str] = set()
        """Sources shown playing since this connection opened: their stop can be believed."""
        self._unconfirmed: dict[str, float] = {}
        """Plays the server does not show right now, by source, since when."""
        self._ignored: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    # --- the Player protocol -----------------------------------------------------------------

    async def run(self, emit: Emit) -> None:
        """Follow the server until cancelled, reconnecting by itself."""
        self._plays.emit = emit
        watchdog = asyncio.get_running_loop().create_task(self._watch_gone(), name="jf-gone")
        try:
            await self._follow()
        finally:
            self._plays.emit = None
            watchdog.cancel()
            await asyncio.wait([watchdog])

    def connections(self) -> list[Connection]:
        return self._plays.connections()

    def ignored_counts(self) -> Mapping[str, int]:
        return dict(self._counts.counts)

    def routes(self) -> tuple[Route, ...]:
        """None: live mode asks the server, it is not told by webhooks."""
        return ()

    @property
    def connected(self) -> bool:
        return self._connected

    # --- the connection -----------------------------------------------------------------------

    async def _follow(self) -> None:
        delay = self._first_retry
        while True:
            opened_at: float | None = None
            wait = delay
            async with self._connect() as server:
                try:
                    await self._catch_up(server)

                    def opened() -> None:
                        nonlocal opened_at
                        opened_at = self._clock.monotonic()
                        self._opened(server)

                    await server.listen(opened, self._on_message, keepalive=self._keepalive_every)
                    self._lost(server.host, "the server closed the connection")
                except MediaServerUnauthorized as err:
                    self._said.once("refused", logging.ERROR, "%s: %s", self.name, err)
                    self._lost(server.host, "the key was refused")
                    wait = self._refused_retry
                except MediaServerError as err:
                    self._said.once(
                        "unreachable", logging.WARNING, "%s: %s; retrying", self.name, err
                    )
                    self._lost(server.host, str(err))
            if opened_at is not None and self._clock.monotonic() - opened_at >= STABLE:
                delay = self._first_retry
                wait = min(wait, delay)
            else:
                delay = min(delay * 2, self._max_retry)
            await self._clock.sleep(wait)

    async def _catch_up(self, server: MediaServer) -> None:
        """Before listening: whose plays count, and what plays now (a reconnect continues it)."""
        owner = await server.owner()
        if not owner.admin:
            raise MediaServerUnauthorized(
                f"the key is {owner.names[0]}'s, who is no administrator: live mode needs an API "
                "key (Dashboard > API Keys) or an administrator's token"
            )
        if self._users.needs_owner:
            self._users.owner = owner
        self._confirmed.clear()
        sessions = await server.sessions()
        try:
            self._snapshot(sessions)
        except Exception:
            log.exception("%s: could not read the server's sessions", self.name)

    def _opened(self, server: MediaServer) -> None:
        if not self._connected:
            log.info("%s: following the server at %s live", self.name, server.host)
        self._connected = True
        self._said.clear("refused")
        self._said.clear("unreachable")

    def _lost(self, host: str, why: str) -> None:
        if self._connected:
            log.warning("%s: lost the server at %s (%s); reconnecting", self.name, host, why)
        self._connected = False
        self._keepalive = None
        now = self._clock.monotonic()
        for source in self._plays.tracks:
            self._unconfirmed.setdefault(source, now)

    def _keepalive_every(self) -> float | None:
        return self._keepalive

    async def _watch_gone(self) -> None:
        while True:
            await self._clock.sleep(CHECK_EVERY)
            now = self._clock.monotonic()
            for source, since in list(self._unconfirmed.items()):
                if now - since < self._gone_after:
                    continue
                del self._unconfirmed[source]
                if source in self._plays.tracks:
                    log.info("%s: %s is gone from the server; its play ends", self.name, source)
                    self._plays.end(source, EndReason.GONE, None)

    # --- messages -----------------------------------------------------------------------------

    def _on_message(self, text: str) -> None:
        try:
            message = parse_message(text)
            if message.kind == "Sessions":
                if not isinstance(message.data, list):
                    raise Malformed("Sessions without a list")
                self._snapshot([s for s in message.data if isinstance(s, dict)])
            elif message.kind == "ForceKeepAlive":
                seconds = _positive(message.data)
                self._keepalive = max(1.0, seconds / 2) if seconds is not None else None
            # KeepAlive answers ours; Playstate/GeneralCommand are remote-control commands
            # for client sessions; the rest (library changes, activity logs...) is not plays.
        except Malformed as err:
            self._counts.outcome("ignored:malformed")
            self._said.once(
                "malformed", logging.WARNING, "%s: a message not understood (%s)", self.name, err
            )
        except Exception:
            log.exception("%s: could not handle a message", self.name)

    def _snapshot(self, sessions: list[Mapping[str, Any]]) -> None:
        """Every session, as the server sees them now: compare with what we knew."""
        shown: set[str] = set()
        idle: set[str] = set()
        for session in sessions:
            source = _source(self._flavour, session.get("DeviceId"), session.get("Id"))
            if source is None:
                continue
            item = session.get("NowPlayingItem")
            if not isinstance(item, dict):
                idle.add(source)
                continue
            outcome = self._take(source, session, item)
            if outcome == "accepted":
                shown.add(source)
        now = self._clock.monotonic()
        for source in list(self._plays.tracks):
            if source in shown:
                self._unconfirmed.pop(source, None)
                self._confirmed.add(source)
            elif source in idle and source in self._confirmed:
                self._unconfirmed.pop(source, None)
                self._plays.end(source, EndReason.STOPPED, None)
            else:
                self._unconfirmed.setdefault(source, now)

    def _ignore(self, source: str, item: Mapping[str, Any], outcome: str) -> str:
        """Count an ignored play once, not once per message that shows it again."""
        key = (source, str(item.get("Id"))[:64], outcome)
        if key not in self._ignored:
            self._ignored[key] = None
            self._counts.outcome(outcome)
            while len(self._ignored) > MAX_KNOWN:
                self._ignored.popitem(last=False)
        return outcome

    def _take(self, source: str, session: Mapping[str, Any], item: Mapping[str, Any]) -> str:
        user = _text(session.get("UserName"))
        allowed = self._users.allows(user, _key_text(session.get("UserId")))
        if not allowed:
            return self._ignore(source, item, "ignored:user")
        media = read_item(item)
        if isinstance(media, str):
            return self._ignore(source, item, f"ignored:{media}")
        state = _dict(session.get("PlayState"))
        position = _ticks(state.get("PositionTicks"))
        paused = _flag(state.get("IsPaused"))
        report = (session.get("LastPlaybackCheckIn"), state.get("PositionTicks"), paused)
        return self._plays.observe(
            source,
            _item_key(item.get("Id"), media),
            media,
            position,
            paused,
            start=True,
            user=user or "?",
            device=_text(session.get("DeviceName")) or _text(session.get("Client")) or "player",
            report=repr(report)[:256],
        )


def device_id_of(host: str) -> str:
    """Ours, per machine: the server keeps one session per device id, so two daemons on two
    machines must not share one. Only characters safe in a header and a query."""
    return "trakt-scrobbled-" + (re.sub(r"[^A-Za-z0-9._-]", "", host)[:64] or "host")


# --- wiring --------------------------------------------------------------------------------------


def build_jellyfin(
    section: str, config: MediaServerConfig, *, clock: Clock
) -> MediaServerLive | MediaServerWebhooks:
    """The adapter `[jellyfin]` (or `[emby]`) asks for."""
    from trakt_scrobbled.config import MediaServerMode

    flavour = Flavour(section)
    device_id = device_id_of(socket.gethostname())

    def connect() -> MediaServer:
        return MediaServer(flavour, config.url, config.api_key, device_id=device_id)

    if config.mode is MediaServerMode.LIVE:
        return MediaServerLive(flavour, connect, config.users, clock=clock)
    can_ask = bool(config.url and config.api_key)
    return MediaServerWebhooks(
        flavour,
        secret=config.secret,
        users=config.users,
        server=connect if can_ask else None,
        clock=clock,
    )
