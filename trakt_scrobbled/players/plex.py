"""The Plex adapter: turns Plex Media Server webhooks into player events.

Plex pushes (through `LocalServer`) one webhook per transition, often without a position and
never with a periodic one, so positions are kept per player and extrapolated while playing; a
missing or zero `viewOffset` never overwrites a known position. When the Plex server's URL and
token are configured, a webhook without a position asks `/status/sessions` for it; webhooks of
one player are then applied in order, behind that lookup. Plex's own `media.scrobble` (at 90 %)
only moves the position: whether a play counts is the session machine's call.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import httpx

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
from trakt_scrobbled.players import Connection, Emit, Route, doing_label
from trakt_scrobbled.players.playhead import extrapolate

__all__ = ["AccountFilter", "Outcome", "PlexPlayer", "read_item"]

log = logging.getLogger(__name__)

SEEK_TOLERANCE = 10.0
"""Seconds a resume's `viewOffset` may be off the extrapolated position without being a seek."""

SCROBBLE_POINT = 0.9
"""Plex sends `media.scrobble` once 90 % are watched."""

RECENT = 3600.0
"""Seconds an idle Plex player stays in `connections()` after its last webhook."""

LOOKUP_TIMEOUT = 3.0
"""Seconds a `/status/sessions` request may take."""

_MEDIA_TYPES = {"movie": MediaType.MOVIE, "episode": MediaType.EPISODE}
_SECTION_TYPES = frozenset({"movie", "show"})
_IMDB = re.compile(r"tt\d{5,}")
_LEGACY_PREFIX = "com.plexapp.agents."
MAX_SEEN = 256
"""Plex players remembered for `connections()`; the oldest idle ones are forgotten first."""


class Outcome(StrEnum):
    """What `handle` did with a webhook; `ignored:*` ones are counted by reason."""

    ACCEPTED = "accepted"
    NOT_RUNNING = "ignored:not_running"
    EVENT = "ignored:event"
    """Not a playback event (`library.new`, `media.rate`, `admin.*`...)."""
    ACCOUNT = "ignored:account"
    """Someone else's play: not the webhook owner's, or not in `accounts`."""
    MEDIA_TYPE = "ignored:media_type"
    """Trailers, pre-rolls, extras, music, photos."""
    LIVE = "ignored:live"
    NO_PLAYER = "ignored:no_player"
    NOT_PLAYING = "ignored:not_playing"
    """A stop for an item this player is not known to play."""
    MALFORMED = "ignored:malformed"

    @property
    def reason(self) -> str | None:
        """The counter's key (`account`), None when accepted."""
        kind, _, reason = self.value.partition(":")
        return reason if kind == "ignored" else None


class _Event(StrEnum):
    PLAY = "media.play"
    RESUME = "media.resume"
    PAUSE = "media.pause"
    STOP = "media.stop"
    SCROBBLE = "media.scrobble"


_EVENTS = frozenset(e.value for e in _Event)


@dataclass(frozen=True, slots=True)
class _Webhook:
    """The parts of one accepted webhook that matter."""

    event: _Event
    source: str
    player_uuid: str
    player_title: str
    account: str
    account_id: str | None
    key: str
    """What identifies the item on this player (its ratingKey, else its guid or title)."""
    rating_key: str | None
    media: MediaInfo
    offset: float | None
    """Seconds; None when Plex sent none, or 0."""


@dataclass(slots=True)
class _Track:
    """What one Plex player is playing, and where it was last known to be."""

    key: str
    media: MediaInfo
    position: float
    at: float
    """Monotonic time of `position`."""
    paused: bool


@dataclass(frozen=True, slots=True)
class _Seen:
    player_title: str
    account: str
    at: float


# --- reading payloads ---------------------------------------------------------------------------


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdecimal():
        return int(value.strip()) if len(value) < 20 else None
    return None


def _millis(value: object) -> float | None:
    """Plex milliseconds as seconds; None unless a finite number above zero."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value) / 1000
    except (ValueError, OverflowError):
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def _positive(value: object) -> int | None:
    number = _int(value)
    return number if number is not None and number > 0 else None


def _non_negative(value: object) -> int | None:
    number = _int(value)
    return number if number is not None and number >= 0 else None


def _key_text(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return _text(value)


def _guid_list_ids(value: object) -> Ids:
    """The new agents' `Guid` list: `imdb://tt…`, `tmdb://123`, `tvdb://456`."""
    found: dict[str, Any] = {}
    for entry in _list(value):
        guid = _text(_dict(entry).get("id"))
        if guid is None:
            continue
        scheme, _, rest = guid.strip().partition("://")
        scheme = scheme.lower()
        if scheme == "imdb" and _IMDB.fullmatch(rest):
            found.setdefault("imdb", rest)
        elif scheme in ("tmdb", "tvdb") and (number := _positive(rest)) is not None:
            found.setdefault(scheme, number)
    return Ids(**found)


@dataclass(frozen=True, slots=True)
class _Legacy:
    """What a legacy agent's `guid` says."""

    ids: Ids = field(default_factory=Ids)
    show_ids: Ids = field(default_factory=Ids)
    season: int | None = None
    episode: int | None = None


def _legacy(guid: object, media_type: MediaType) -> _Legacy:
    """`com.plexapp.agents.imdb://tt…?lang=en`, `….themoviedb://603`, `….thetvdb://81189/1/2`."""
    text = _text(guid)
    if text is None:
        return _Legacy()
    scheme, _, rest = text.strip().partition("://")
    if not scheme.lower().startswith(_LEGACY_PREFIX):
        return _Legacy()  # plex://, local://, tv.plex.agents.*: no usable id
    agent = scheme.lower().removeprefix(_LEGACY_PREFIX)
    parts = rest.split("?", 1)[0].split("/")
    first = parts[0]
    season = _non_negative(parts[1]) if len(parts) > 1 else None
    episode = _non_negative(parts[2]) if len(parts) > 2 else None
    ids = Ids()
    if _IMDB.fullmatch(first):
        ids = Ids(imdb=first)  # imdb, and agents like xbmcnfo that key movies by imdb id
    elif agent == "themoviedb" and (number := _positive(first)) is not None:
        ids = Ids(tmdb=number)
    elif agent.startswith("thetvdb") and (number := _positive(first)) is not None:
        ids = Ids(tvdb=number)
    if media_type is MediaType.EPISODE:
        return _Legacy(show_ids=ids, season=season, episode=episode)
    return _Legacy(ids=ids)


def _merge(first: Ids, second: Ids) -> Ids:
    """`first`'s ids, missing ones taken from `second`."""
    return Ids(
        trakt=first.trakt if first.trakt is not None else second.trakt,
        slug=first.slug if first.slug is not None else second.slug,
        imdb=first.imdb if first.imdb is not None else second.imdb,
        tmdb=first.tmdb if first.tmdb is not None else second.tmdb,
        tvdb=first.tvdb if first.tvdb is not None else second.tvdb,
    )


def _media(meta: Mapping[str, Any], media_type: MediaType) -> MediaInfo:
    legacy = _legacy(meta.get("guid"), media_type)
    show_ids = legacy.show_ids
    if media_type is MediaType.EPISODE:
        show_ids = _merge(show_ids, _legacy(meta.get("grandparentGuid"), media_type).show_ids)
    season = _non_negative(meta.get("parentIndex"))
    episode = _non_negative(meta.get("index"))
    path = None
    for medium in _list(meta.get("Media")):
        for part in _list(_dict(medium).get("Part")):
            path = path or _text(_dict(part).get("file"))
    return MediaInfo(
        path=path,
        title=_text(meta.get("title")),
        year=_positive(meta.get("year")),
        media_type=media_type,
        show_title=_text(meta.get("grandparentTitle")) if media_type is MediaType.EPISODE else None,
        season=season if season is not None else legacy.season,
        episode=episode if episode is not None else legacy.episode,
        ids=_merge(_guid_list_ids(meta.get("Guid")), legacy.ids),
        show_ids=show_ids,
        duration=_millis(meta.get("duration")),
    )


def _item_key(meta: Mapping[str, Any], media: MediaInfo) -> str:
    if (rating_key := _key_text(meta.get("ratingKey"))) is not None:
        return f"ratingKey:{rating_key}"
    if (guid := _text(meta.get("guid"))) is not None:
        return f"guid:{guid}"
    return f"title:{media.show_title}/{media.season}/{media.episode}/{media.title}"


def _is_show_or_movie(section: object) -> bool:
    return isinstance(section, str) and section in _SECTION_TYPES


def _is_live(meta: Mapping[str, Any]) -> bool:
    live = meta.get("live")
    if live is True or live == 1 or live == "1":
        return True
    guid = _text(meta.get("guid")) or ""
    return guid.startswith("tv.plex.providers.epg")


def read_item(meta: Mapping[str, Any]) -> MediaInfo | Outcome:
    """What a Plex `Metadata` object is, or why it is not scrobbled.

    Shared by webhooks and live mode (`plex_live`): the same item is the same `MediaInfo`
    whichever way Plex told us about it.
    """
    media_type = _MEDIA_TYPES.get(str(meta.get("type")))
    section = meta.get("librarySectionType")
    if media_type is None or (section is not None and not _is_show_or_movie(section)):
        return Outcome.MEDIA_TYPE
    if "extraType" in meta or meta.get("subtype") == "trailer":
        return Outcome.MEDIA_TYPE
    if _is_live(meta):
        return Outcome.LIVE
    return _media(meta, media_type)


class AccountFilter:
    """Whose plays count: the `accounts` listed by name, or (none listed) the owner's own."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(a.strip().casefold() for a in names if a.strip())

    def __bool__(self) -> bool:
        return bool(self.names)

    def allows(self, name: str | None, *, own: bool) -> bool:
        """`own`: the play is the token's (or webhook's) owner's."""
        if self.names:
            return (name or "").strip().casefold() in self.names
        return own


# --- the adapter --------------------------------------------------------------------------------


class PlexPlayer:
    """Every Plex player the webhooks mention; one source (`plex:<Player.uuid>`) each."""

    name = "plex"

    def __init__(
        self,
        accounts: Sequence[str],
        *,
        secret: str = "",
        clock: Clock | None = None,
        server_url: str = "",
        server_token: str = "",
    ) -> None:
        self._accounts = AccountFilter(accounts)
        self._secret = secret
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._server_url = server_url.strip().rstrip("/")
        self._server_token = server_token
        self._emit: Emit | None = None
        self._http: httpx.AsyncClient | None = None
        self._tracks: dict[str, _Track] = {}
        self._seen: dict[str, _Seen] = {}
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._ignored: dict[str, int] = {}
        self._said = LogOnce(log)

    @property
    def _lookups(self) -> bool:
        return bool(self._server_url and self._server_token)

    async def run(self, emit: Emit) -> None:
        """Accept webhooks until cancelled; the server calls `handle` meanwhile."""
        http = httpx.AsyncClient(timeout=LOOKUP_TIMEOUT) if self._lookups else None
        self._emit, self._http = emit, http
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            self._emit = self._http = None
            tails = list(self._tails.values())
            self._tails.clear()
            for task in tails:
                task.cancel()
            if tails:
                await asyncio.wait(tails)
            if http is not None:
                await http.aclose()

    def connections(self) -> list[Connection]:
        now = self._clock.monotonic()
        out: list[Connection] = []
        for source, seen in list(self._seen.items()):
            track = self._tracks.get(source)
            if track is None and now - seen.at > RECENT:
                del self._seen[source]
                continue
            doing = "idle" if track is None else doing_label(track.media, paused=track.paused)
            out.append(Connection(source, f"{seen.player_title} ({seen.account}): {doing}"))
        return out

    def ignored_counts(self) -> Mapping[str, int]:
        """Webhooks ignored since start, by reason (`account`, `media_type`...)."""
        return dict(self._ignored)

    def routes(self) -> tuple[Route, ...]:
        """`POST /plex/SECRET`; none without a secret (the listener then answers 404)."""
        return (Route("plex", self._secret, self.handle),) if self._secret else ()

    def handle(self, payload: Mapping[str, Any]) -> Outcome:
        """Take one webhook's payload; returns at once and never raises."""
        try:
            outcome = self._take(payload)
        except Exception:
            log.exception("plex: could not handle a webhook")
            outcome = Outcome.MALFORMED
        if (reason := outcome.reason) is not None:
            self._ignored[reason] = self._ignored.get(reason, 0) + 1
        return outcome

    # --- taking a webhook ----------------------------------------------------------------------

    def _take(self, payload: Mapping[str, Any]) -> Outcome:
        if not isinstance(payload, Mapping):
            return Outcome.MALFORMED
        if self._emit is None:
            return Outcome.NOT_RUNNING
        name = payload.get("event")
        if not isinstance(name, str) or name not in _EVENTS:
            return Outcome.EVENT
        event = _Event(name)
        account = _text(_dict(payload.get("Account")).get("title")) or ""
        account_id = _key_text(_dict(payload.get("Account")).get("id"))
        if not self._accounts.allows(account, own=payload.get("user") is True):
            return Outcome.ACCOUNT
        meta = _dict(payload.get("Metadata"))
        media = read_item(meta)
        if isinstance(media, Outcome):
            return media
        player = _dict(payload.get("Player"))
        uuid = _key_text(player.get("uuid"))
        if uuid is None:
            return Outcome.NO_PLAYER
        offset = _millis(meta.get("viewOffset"))
        if offset is not None and media.duration is not None:
            offset = min(offset, media.duration)
        hook = _Webhook(
            event=event,
            source=f"plex:{uuid}",
            player_uuid=uuid,
            player_title=_text(player.get("title")) or "Plex player",
            account=account or "?",
            account_id=account_id,
            key=_item_key(meta, media),
            rating_key=_key_text(meta.get("ratingKey")),
            media=media,
            offset=offset,
        )
        self._saw(hook)
        wants_lookup = self._lookups and offset is None and event is not _Event.STOP
        if wants_lookup or hook.source in self._tails:
            self._defer(hook, lookup=wants_lookup)
            return Outcome.ACCEPTED
        return self._apply(hook)

    def _saw(self, hook: _Webhook) -> None:
        self._seen.pop(hook.source, None)  # re-inserted last: the dict stays oldest first
        self._seen[hook.source] = _Seen(hook.player_title, hook.account, self._clock.monotonic())
        idle = [s for s in self._seen if s not in self._tracks]
        for source in idle[: max(0, len(self._seen) - MAX_SEEN)]:
            del self._seen[source]

    def _defer(self, hook: _Webhook, *, lookup: bool) -> None:
        """Apply `hook` after the player's earlier webhooks, once its position is looked up."""
        before = self._tails.get(hook.source)
        task = asyncio.get_running_loop().create_task(self._later(before, hook, lookup=lookup))
        self._tails[hook.source] = task

        def done(finished: asyncio.Task[None]) -> None:
            if self._tails.get(hook.source) is finished:
                del self._tails[hook.source]

        task.add_done_callback(done)

    async def _later(
        self, before: asyncio.Task[None] | None, hook: _Webhook, *, lookup: bool
    ) -> None:
        if before is not None:
            await asyncio.wait([before])
        if lookup:
            offset = await self._session_offset(hook)
            if offset is not None and hook.media.duration is not None:
                offset = min(offset, hook.media.duration)
            hook = replace(hook, offset=offset)
        if self._emit is None:
            return
        try:
            outcome = self._apply(hook)
        except Exception:
            log.exception("plex: could not handle a webhook")
            outcome = Outcome.MALFORMED
        if (reason := outcome.reason) is not None:
            self._ignored[reason] = self._ignored.get(reason, 0) + 1

    async def _session_offset(self, hook: _Webhook) -> float | None:
        """The player's position as the Plex server reports it; None when it cannot say."""
        http = self._http
        if http is None:
            return None
        try:
            response = await http.get(
                f"{self._server_url}/status/sessions",
                headers={"X-Plex-Token": self._server_token, "Accept": "application/json"},
            )
            response.raise_for_status()
            data = response.json()
        except httpx.HTTPStatusError as err:
            self._lookup_failed(f"HTTP {err.response.status_code}")
            return None
        except Exception as err:  # unreachable, timed out, not JSON, a malformed URL
            self._lookup_failed(type(err).__name__)
            return None
        if self._said.clear("sessions"):
            log.info("plex: the server's sessions are readable again")
        for session in _list(_dict(_dict(data).get("MediaContainer")).get("Metadata")):
            session = _dict(session)
            player = _dict(session.get("Player"))
            ids = {_key_text(player.get("machineIdentifier")), _key_text(player.get("uuid"))}
            if hook.player_uuid not in ids:
                continue
            rating_key = _key_text(session.get("ratingKey"))
            if hook.rating_key is not None and rating_key not in (None, hook.rating_key):
                continue
            return _millis(session.get("viewOffset"))
        return None

    def _lookup_failed(self, why: str) -> None:
        try:
            host = httpx.URL(self._server_url).host or "?"  # never the URL: it may hold a token
        except Exception:
            host = "?"
        self._said.once(
            "sessions",
            logging.WARNING,
            "plex: cannot read the sessions of the Plex server at %s (%s); "
            "positions come from webhooks only",
            host,
            why,
        )

    # --- from webhooks to events ---------------------------------------------------------------

    def _apply(self, hook: _Webhook) -> Outcome:
        track = self._tracks.get(hook.source)
        if track is not None and track.key != hook.key:
            if hook.event is _Event.STOP:
                return Outcome.NOT_PLAYING  # a late stop of an item already replaced
            self._end(hook.source, track, EndReason.REPLACED, None)
            track = None
        if hook.event is _Event.STOP:
            if track is None:
                return Outcome.NOT_PLAYING
            self._end(hook.source, track, EndReason.STOPPED, hook.offset)
            return Outcome.ACCEPTED
        if track is None:
            self._start(hook, paused=hook.event is _Event.PAUSE)
            if hook.event is _Event.SCROBBLE:
                self._scrobbled(hook, self._tracks[hook.source])
            return Outcome.ACCEPTED
        if hook.event is _Event.PAUSE:
            position = hook.offset if hook.offset is not None else self._estimate(track)
            self._remember(track, position)
            if not track.paused:
                track.paused = True
                self._send(Paused(hook.source, position))
        elif hook.event in (_Event.RESUME, _Event.PLAY):
            self._seek_if_far(hook, track)
            if track.paused:
                self._remember(track, self._estimate(track))
                track.paused = False
                position = track.position
                self._send(Resumed(hook.source, position))
        else:
            self._scrobbled(hook, track)
        return Outcome.ACCEPTED

    def _start(self, hook: _Webhook, *, paused: bool) -> None:
        now = self._clock.monotonic()
        position = hook.offset if hook.offset is not None else 0.0
        track = _Track(hook.key, hook.media, position, now, paused)
        self._tracks[hook.source] = track
        log.info(
            "plex: %s (%s) plays %s",
            hook.player_title,
            hook.account,
            hook.media.show_title or hook.media.title or "an item",
        )
        self._send(
            Playing(
                hook.source,
                hook.media,
                position=position,
                duration=hook.media.duration,
                paused=track.paused,
                user=hook.account if hook.account != "?" else None,
                user_id=hook.account_id,
            ),
        )

    def _seek_if_far(self, hook: _Webhook, track: _Track) -> None:
        if hook.offset is None:
            return
        if abs(hook.offset - self._estimate(track)) > SEEK_TOLERANCE:
            self._remember(track, hook.offset)
            self._send(Seeked(hook.source, hook.offset))
        else:
            self._remember(track, hook.offset)

    def _scrobbled(self, hook: _Webhook, track: _Track) -> None:
        position = max(self._estimate(track), hook.offset or 0.0)
        if track.media.duration is not None:
            position = min(
                max(position, SCROBBLE_POINT * track.media.duration), track.media.duration
            )
        self._remember(track, position)
        self._send(Progressed(hook.source, position, track.media.duration))

    def _end(self, source: str, track: _Track, reason: EndReason, offset: float | None) -> None:
        position = offset if offset is not None else self._estimate(track)
        del self._tracks[source]
        self._send(Ended(source, position, reason))

    def _estimate(self, track: _Track) -> float:
        """The last known position, extrapolated while playing, capped at the duration."""
        return extrapolate(
            track.position,
            track.at,
            self._clock.monotonic(),
            moving=not track.paused,
            duration=track.media.duration,
        )

    def _remember(self, track: _Track, position: float) -> None:
        track.position = position
        track.at = self._clock.monotonic()

    def _send(self, event: PlayerEvent) -> None:
        emit = self._emit
        if emit is None:
            return
        emit(event)
