"""What the fake Trakt remembers for its one user, and how each endpoint changes it.

Every method takes parsed input and returns a `Reply`; none does I/O and none locks: the
server calls them under `FakeTrakt`'s lock. All time logic reads the injected clock
(`monotonic` for lifetimes and rates, `time` for the timestamps Trakt prints).
"""

from __future__ import annotations

import json
import logging
import math
import secrets
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from trakt_scrobbled.clock import Clock
from trakt_scrobbled.events import Ids

from .catalogue import (
    Catalogue,
    Item,
    Movie,
    SearchType,
    Show,
    ShowEpisode,
    episode_json,
    hit_json,
    item_json,
    item_key,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

INVALID_GRANT = {
    "error": "invalid_grant",
    "error_description": (
        "The provided authorization grant is invalid, expired, revoked, does not match the "
        "redirection URI used in the authorization request, or was issued to another client."
    ),
}
INVALID_CLIENT = {
    "error": "invalid_client",
    "error_description": "Client authentication failed due to unknown client.",
}
SHARING = {"twitter": False, "mastodon": False, "tumblr": False}
WATCHED_AT_LEAST = 80.0
FIRST_HISTORY_ID = 2**32 + 1
"""History ids start above 32 bits: clients must keep them as 64-bit integers."""


class DeviceStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    USED = "used"


class HistoryAction(StrEnum):
    SCROBBLE = "scrobble"
    CHECKIN = "checkin"
    WATCH = "watch"


class ScrobbleVerb(StrEnum):
    START = "start"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class FakeConfig:
    """The knobs a test turns; times are seconds on the injected clock."""

    client_id: str = "test-client-id"
    client_secret: str = field(default="test-secret", repr=False)
    token_lifetime: float = 7 * 86400
    device_interval: float = 1.0
    device_expires_in: float = 600.0
    post_interval: float = 1.0
    """AUTHED_API_POST_LIMIT: least spacing of accepted writes; 0 turns the limit off."""
    get_limit: int = 1000
    get_period: float = 300.0
    scrobble_window: float = 3600.0
    """How long after a scrobble the same item's scrobble answers 409."""
    auto_approve: bool = False
    """Device codes are born approved (standalone use without a test to approve them)."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any = None
    """JSON-able; None sends an empty body."""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    created_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "scope": "public",
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class DeviceCode:
    device_code: str = field(repr=False)
    user_code: str
    status: DeviceStatus
    expired: bool


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    id: int
    watched_at: datetime
    action: HistoryAction
    item: Item


@dataclass(frozen=True, slots=True)
class PlaybackEntry:
    id: int
    progress: float
    paused_at: datetime
    item: Item


@dataclass(frozen=True, slots=True)
class Watching:
    item: Item
    progress: float
    started_at: datetime


@dataclass(slots=True)
class _Grant:
    pair: TokenPair
    expires_mono: float
    revoked: bool = False
    refresh_used: bool = False


@dataclass(slots=True)
class _Device:
    device_code: str
    user_code: str
    interval: float
    expires_mono: float
    status: DeviceStatus = DeviceStatus.PENDING
    expired: bool = False
    last_poll: float | None = None
    grantor: TraktState | None = None
    """The user who approved the code (the household: another Trakt user); None: this one."""


class _Invalid(Exception):
    """A body Trakt would answer 422 to."""


def iso(dt: datetime) -> str:
    """Trakt's timestamp format: `2014-09-01T09:10:11.000Z`."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    """Raises ValueError; a naive timestamp is taken as UTC."""
    dt = datetime.fromisoformat(text)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _json_number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


def _int(x: object) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def _obj(x: object, what: str) -> dict[str, Any]:
    if not isinstance(x, dict):
        raise _Invalid(f"{what} must be an object")
    return x


def _error(status: int, error: str, description: str | None = None) -> Reply:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return Reply(status, body)


def rate_limited(name: str, period: float, limit: int, wait: float, now: datetime) -> Reply:
    """A 429 as the blueprint's Rate Limiting section shows it."""
    until = now + timedelta(seconds=wait)
    info = {
        "name": name,
        "period": _json_number(period),
        "limit": limit,
        "remaining": 0,
        "until": iso(until),
    }
    headers = {"Retry-After": str(max(1, math.ceil(wait))), "X-Ratelimit": json.dumps(info)}
    return Reply(429, None, headers)


class TraktState:
    """One Trakt user's tokens, device codes, history, playback and watching status."""

    def __init__(self, config: FakeConfig, clock: Clock, catalogue: Catalogue) -> None:
        self.config = config
        self.catalogue = catalogue
        self._clock = clock
        self._grants_by_access: dict[str, _Grant] = {}
        self._grants_by_refresh: dict[str, _Grant] = {}
        self._devices: dict[str, _Device] = {}
        self._history: list[HistoryEntry] = []
        self._playback: list[PlaybackEntry] = []
        self._watching: Watching | None = None
        self._next_history_id = FIRST_HISTORY_ID
        self._next_playback_id = 1
        self._last_post: float | None = None
        self._gets: dict[str, deque[float]] = {}

    def now(self) -> datetime:
        """The injected clock's wall time, as Trakt stamps it."""
        return datetime.fromtimestamp(self._clock.time(), UTC)

    # --- snapshots -------------------------------------------------------------------------

    def history(self) -> tuple[HistoryEntry, ...]:
        return tuple(self._history)

    def playback(self) -> tuple[PlaybackEntry, ...]:
        return tuple(self._playback)

    def watching(self) -> Watching | None:
        return self._watching

    def device_codes(self) -> tuple[DeviceCode, ...]:
        now = self._clock.monotonic()
        return tuple(
            DeviceCode(d.device_code, d.user_code, d.status, d.expired or now >= d.expires_mono)
            for d in self._devices.values()
        )

    # --- tokens ----------------------------------------------------------------------------

    def issue_token(self) -> TokenPair:
        pair = TokenPair(
            access_token=secrets.token_hex(32),
            refresh_token=secrets.token_hex(32),
            expires_in=int(self.config.token_lifetime),
            created_at=int(self._clock.time()),
        )
        grant = _Grant(pair, self._clock.monotonic() + self.config.token_lifetime)
        self._grants_by_access[pair.access_token] = grant
        self._grants_by_refresh[pair.refresh_token] = grant
        return pair

    def owns(self, token: str) -> bool:
        """Whether `token` (access or refresh) was issued to this user."""
        return token in self._grants_by_access or token in self._grants_by_refresh

    def authenticate(self, authorization: str | None) -> bool:
        """True for `Bearer <token>` naming an unrevoked, unexpired access token."""
        if authorization is None:
            return False
        scheme, _, token = authorization.partition(" ")
        grant = self._grants_by_access.get(token.strip())
        if scheme.lower() != "bearer" or grant is None or grant.revoked:
            return False
        return self._clock.monotonic() < grant.expires_mono

    def expire_access_tokens(self) -> None:
        now = self._clock.monotonic()
        for grant in self._grants_by_access.values():
            grant.expires_mono = min(grant.expires_mono, now)
        log.info("fake trakt: all access tokens expired")

    def _client_ok(self, body: Mapping[str, Any], secret: bool = True) -> bool:
        if body.get("client_id") != self.config.client_id:
            return False
        return not secret or body.get("client_secret") == self.config.client_secret

    def oauth_token(self, body: Mapping[str, Any]) -> Reply:
        if not self._client_ok(body):
            return Reply(401, INVALID_CLIENT)
        grant_type = body.get("grant_type")
        if grant_type == "authorization_code":
            return Reply(401, INVALID_GRANT)  # the fake never hands out authorization codes
        if grant_type != "refresh_token":
            return _error(400, "unsupported_grant_type")
        token = body.get("refresh_token")
        grant = self._grants_by_refresh.get(token) if isinstance(token, str) else None
        if grant is None or grant.refresh_used or grant.revoked:
            log.info("fake trakt: refresh with a used or unknown refresh token")
            return Reply(401, INVALID_GRANT)
        grant.refresh_used = True
        log.info("fake trakt: token refreshed")
        return Reply(200, self.issue_token().to_json())

    def revoke(self, body: Mapping[str, Any]) -> Reply:
        if not self._client_ok(body):
            return Reply(401, INVALID_CLIENT)
        token = body.get("token")
        if isinstance(token, str):
            grant = self._grants_by_access.get(token) or self._grants_by_refresh.get(token)
            if grant is not None:
                grant.revoked = True
                log.info("fake trakt: token revoked")
        return Reply(200, {})

    # --- device flow -----------------------------------------------------------------------

    def new_device_code(self, body: Mapping[str, Any]) -> Reply:
        if not self._client_ok(body, secret=False):
            return Reply(401, INVALID_CLIENT)
        user_code = secrets.token_hex(4).upper()
        while any(d.user_code == user_code for d in self._devices.values()):
            user_code = secrets.token_hex(4).upper()
        cfg = self.config
        dev = _Device(
            device_code=secrets.token_hex(32),
            user_code=user_code,
            interval=cfg.device_interval,
            expires_mono=self._clock.monotonic() + cfg.device_expires_in,
            status=DeviceStatus.APPROVED if cfg.auto_approve else DeviceStatus.PENDING,
        )
        self._devices[dev.device_code] = dev
        log.info("fake trakt: device code issued, user code %s", user_code)
        return Reply(
            200,
            {
                "device_code": dev.device_code,
                "user_code": user_code,
                "verification_url": "https://trakt.tv/activate",
                "expires_in": _json_number(cfg.device_expires_in),
                "interval": _json_number(cfg.device_interval),
            },
        )

    def poll_device(self, body: Mapping[str, Any]) -> Reply:
        if not self._client_ok(body):
            return Reply(401, INVALID_CLIENT)
        code = body.get("code")
        dev = self._devices.get(code) if isinstance(code, str) else None
        if dev is None:
            return Reply(404)
        if dev.status is DeviceStatus.USED:
            return Reply(409)
        if dev.status is DeviceStatus.DENIED:
            return Reply(418)
        now = self._clock.monotonic()
        if dev.expired or now >= dev.expires_mono:
            return Reply(410)
        if dev.last_poll is not None and now - dev.last_poll < dev.interval:
            return Reply(429, None, {"Retry-After": str(max(1, math.ceil(dev.interval)))})
        dev.last_poll = now
        if dev.status is DeviceStatus.PENDING:
            return Reply(400)
        dev.status = DeviceStatus.USED
        log.info("fake trakt: device code %s exchanged for a token", dev.user_code)
        return Reply(200, (dev.grantor or self).issue_token().to_json())

    def _device_by_user_code(self, user_code: str | None) -> _Device:
        if user_code is None:
            pending = [d for d in self._devices.values() if d.status is DeviceStatus.PENDING]
            if not pending:
                raise KeyError("no pending device code")
            return pending[-1]
        for dev in self._devices.values():
            if dev.user_code == user_code:
                return dev
        raise KeyError(f"no device code with user code {user_code!r}")

    def set_device_status(
        self, user_code: str | None, status: DeviceStatus, grantor: TraktState | None = None
    ) -> str:
        dev = self._device_by_user_code(user_code)
        dev.status = status
        dev.grantor = grantor
        log.info("fake trakt: user code %s %s", dev.user_code, status)
        return dev.user_code

    def expire_device_codes(self) -> None:
        for dev in self._devices.values():
            dev.expired = True

    # --- rate limits -----------------------------------------------------------------------

    def check_post_rate(self) -> Reply | None:
        """AUTHED_API_POST_LIMIT; an accepted write is one that passed this check."""
        interval = self.config.post_interval
        now = self._clock.monotonic()
        if interval > 0 and self._last_post is not None and now - self._last_post < interval:
            wait = interval - (now - self._last_post)
            return rate_limited("AUTHED_API_POST_LIMIT", interval, 1, wait, self.now())
        self._last_post = now
        return None

    def check_get_rate(self, authed: bool) -> Reply | None:
        name = "AUTHED_API_GET_LIMIT" if authed else "UNAUTHED_API_GET_LIMIT"
        window = self._gets.setdefault(name, deque())
        now = self._clock.monotonic()
        period = self.config.get_period
        while window and window[0] <= now - period:
            window.popleft()
        if len(window) >= self.config.get_limit:
            wait = window[0] + period - now
            return rate_limited(name, period, self.config.get_limit, wait, self.now())
        window.append(now)
        return None

    # --- scrobble --------------------------------------------------------------------------

    def _resolve_episode(self, ep: Mapping[str, Any], show: object) -> ShowEpisode | None:
        ids = Ids.from_json(ep.get("ids"))
        if ids:
            found = self.catalogue.find_episode(ids)
            if found is not None or show is None:
                return found
        if show is None:
            raise _Invalid("an episode needs ids, or a show with season and number")
        show_obj = _obj(show, "show")
        season, number = _int(ep.get("season")), _int(ep.get("number"))
        number_abs = _int(ep.get("number_abs"))
        if number is None and number_abs is None:
            raise _Invalid("an episode needs ids, number or number_abs")
        if number is not None and season is None:
            raise _Invalid("an episode number needs its season")
        found_show = self.catalogue.find_show(
            Ids.from_json(show_obj.get("ids")), show_obj.get("title"), show_obj.get("year")
        )
        if found_show is None:
            return None
        return self.catalogue.find_show_episode(found_show, season, number, number_abs)

    def _resolve_movie(self, movie: object) -> Movie | None:
        m = _obj(movie, "movie")
        return self.catalogue.find_movie(Ids.from_json(m.get("ids")), m.get("title"), m.get("year"))

    def _drop_playback(self, item: Item) -> None:
        key = item_key(item)
        self._playback = [p for p in self._playback if item_key(p.item) != key]

    def _add_history(self, item: Item, watched_at: datetime, action: HistoryAction) -> HistoryEntry:
        entry = HistoryEntry(self._next_history_id, watched_at, action, item)
        self._next_history_id += 1
        self._history.append(entry)
        return entry

    def add_history_entry(
        self, item: Item, watched_at: datetime | None, action: HistoryAction
    ) -> HistoryEntry:
        return self._add_history(item, watched_at or self.now(), action)

    def scrobble(self, verb: ScrobbleVerb, body: Mapping[str, Any]) -> Reply:
        progress = body.get("progress")
        if (
            not isinstance(progress, int | float)
            or isinstance(progress, bool)
            or not 0 <= progress <= 100
        ):
            return _error(422, "validation", "progress must be a number from 0 to 100")
        if ("movie" in body) == ("episode" in body):
            return _error(422, "validation", "send exactly one of movie or episode")
        try:
            item: Item | None = (
                self._resolve_movie(body["movie"])
                if "movie" in body
                else self._resolve_episode(_obj(body["episode"], "episode"), body.get("show"))
            )
        except _Invalid as err:
            return _error(422, "validation", str(err))
        if item is None:
            return _error(404, "not_found", "no such movie or episode")
        now = self.now()
        answer: dict[str, Any] = {"progress": progress, "sharing": SHARING, **item_json(item)}
        if verb is ScrobbleVerb.START:
            self._drop_playback(item)
            self._watching = Watching(item, float(progress), now)
            return Reply(201, {"id": 0, "action": "start", **answer})
        if progress < 1:
            return _error(422, "validation", "progress under 1 %: scrobble ignored")
        if progress < WATCHED_AT_LEAST:
            self._drop_playback(item)
            entry = PlaybackEntry(self._next_playback_id, float(progress), now, item)
            self._next_playback_id += 1
            self._playback.append(entry)
            self._watching = None
            return Reply(201, {"id": entry.id, "action": "pause", **answer})
        key = item_key(item)
        window = timedelta(seconds=self.config.scrobble_window)
        recent = [
            e
            for e in self._history
            if e.action is HistoryAction.SCROBBLE
            and item_key(e.item) == key
            and now - e.watched_at < window
        ]
        if recent:
            last = max(e.watched_at for e in recent)
            return Reply(409, {"watched_at": iso(last), "expires_at": iso(last + window)})
        entry_h = self._add_history(item, now, HistoryAction.SCROBBLE)
        self._drop_playback(item)
        self._watching = None
        log.info("fake trakt: scrobbled %s as history id %d", key, entry_h.id)
        return Reply(201, {"id": entry_h.id, "action": "scrobble", **answer})

    # --- sync ------------------------------------------------------------------------------

    def _watched_at(self, obj: Mapping[str, Any], default: datetime) -> datetime:
        value = obj.get("watched_at")
        if value is None or value in ("released", "unknown"):
            return default
        if not isinstance(value, str):
            raise _Invalid("watched_at must be a string")
        try:
            return parse_iso(value)
        except ValueError as err:
            raise _Invalid(f"watched_at {value!r} is not an ISO 8601 time") from err

    def _list(self, body: Mapping[str, Any], key: str) -> list[Any]:
        value = body.get(key, [])
        if not isinstance(value, list):
            raise _Invalid(f"{key} must be an array")
        return value

    def sync_history(self, body: Mapping[str, Any]) -> Reply:
        """Adds every found item; history is NOT de-duplicated, as on the real service.

        A `watched_at` of `released` or `unknown` is stored as now; a malformed one is a 422.
        """
        now = self.now()
        adds: list[tuple[Item, datetime]] = []
        not_found: dict[str, list[Any]] = {"movies": [], "shows": [], "seasons": [], "episodes": []}
        try:
            for m in self._list(body, "movies"):
                movie = self._resolve_movie(m)
                if movie is None:
                    not_found["movies"].append(m)
                else:
                    adds.append((movie, self._watched_at(m, now)))
            for e in self._list(body, "episodes"):
                found = self.catalogue.find_episode(Ids.from_json(_obj(e, "episode").get("ids")))
                if found is None:
                    not_found["episodes"].append(e)
                else:
                    adds.append((found, self._watched_at(e, now)))
            for s in self._list(body, "shows"):
                adds += self._show_adds(_obj(s, "show"), now, not_found)
            not_found["seasons"] += self._list(body, "seasons")  # the catalogue has no season ids
        except _Invalid as err:
            return _error(422, "validation", str(err))
        for item, watched_at in adds:
            self._add_history(item, watched_at, HistoryAction.WATCH)
        movies = sum(1 for item, _ in adds if isinstance(item, Movie))
        added = {"movies": movies, "episodes": len(adds) - movies}
        log.info("fake trakt: history added %s", added)
        return Reply(201, {"added": added, "not_found": not_found})

    def _show_adds(
        self, s: Mapping[str, Any], now: datetime, not_found: dict[str, list[Any]]
    ) -> list[tuple[Item, datetime]]:
        show = self.catalogue.find_show(Ids.from_json(s.get("ids")), s.get("title"), s.get("year"))
        if show is None:
            not_found["shows"].append(s)
            return []
        show_at = self._watched_at(s, now)
        seasons = s.get("seasons")
        if seasons is None:
            return [(ShowEpisode(show, ep), show_at) for ep in show.episodes]
        adds: list[tuple[Item, datetime]] = []
        for season in self._list(s, "seasons"):
            season = _obj(season, "season")
            season_at = self._watched_at(season, show_at)
            number = _int(season.get("number"))
            eps = season.get("episodes")
            if eps is None:
                adds += [
                    (ShowEpisode(show, ep), season_at)
                    for ep in show.episodes
                    if ep.season == number
                ]
                continue
            for e in self._list(season, "episodes"):
                e = _obj(e, "episode")
                found = self.catalogue.find_show_episode(show, number, _int(e.get("number")), None)
                if found is not None:
                    adds.append((found, self._watched_at(e, season_at)))
        return adds

    def get_history(self, kind: str | None, item_id: str | None, query: Mapping[str, str]) -> Reply:
        if kind not in (None, "movies", "shows", "seasons", "episodes"):
            return Reply(404)
        try:
            start = parse_iso(query["start_at"]) if "start_at" in query else None
            end = parse_iso(query["end_at"]) if "end_at" in query else None
        except ValueError:
            return _error(400, "bad_request", "start_at/end_at must be ISO 8601 times")
        entries = sorted(self._history, key=lambda e: (e.watched_at, e.id), reverse=True)
        if kind == "movies":
            entries = [e for e in entries if isinstance(e.item, Movie)]
        elif kind is not None:
            entries = [e for e in entries if isinstance(e.item, ShowEpisode)]
        if item_id is not None:
            entries = [
                e for e in entries if _history_trakt_id(e.item, kind) == _int_or_none(item_id)
            ]
        if start is not None:
            entries = [e for e in entries if e.watched_at >= start]
        if end is not None:
            entries = [e for e in entries if e.watched_at <= end]
        return paginate(
            entries,
            query,
            lambda e: {
                "id": e.id,
                "watched_at": iso(e.watched_at),
                "action": str(e.action),
                "type": "movie" if isinstance(e.item, Movie) else "episode",
                **item_json(e.item),
            },
        )

    def get_playback(self, kind: str | None) -> Reply:
        if kind not in (None, "movies", "episodes"):
            return Reply(404)
        want = {None: (Movie, ShowEpisode), "movies": (Movie,), "episodes": (ShowEpisode,)}[kind]
        return Reply(
            200,
            [
                {
                    "progress": p.progress,
                    "paused_at": iso(p.paused_at),
                    "id": p.id,
                    "type": "movie" if isinstance(p.item, Movie) else "episode",
                    **item_json(p.item),
                }
                for p in sorted(self._playback, key=lambda p: p.paused_at, reverse=True)
                if isinstance(p.item, want)
            ],
        )

    # --- search ----------------------------------------------------------------------------

    def search_text(self, types: str, query: Mapping[str, str]) -> Reply:
        try:
            wanted = _search_types(types)
        except ValueError as err:
            return _error(400, "bad_request", str(err))
        text = query.get("query", "").strip()
        if not text:
            return _error(400, "bad_request", "query is required")
        try:
            hits = self.catalogue.search_text(wanted, text, query.get("years"))
        except ValueError as err:
            return _error(400, "bad_request", str(err))
        return paginate(hits, query, hit_json)

    def search_id(self, id_type: str, value: str, query: Mapping[str, str]) -> Reply:
        try:
            wanted = _search_types(query.get("type", "movie,show,episode"))
            hits = self.catalogue.lookup_id(id_type, value, wanted)
        except ValueError as err:
            return _error(404 if "id type" in str(err) else 400, "bad_request", str(err))
        return paginate(hits, query, hit_json)

    def aliases(self, kind: str, item_id: str) -> Reply:
        """`GET /movies/:id/aliases`, `GET /shows/:id/aliases`: 404 for an unknown id."""
        found: Movie | Show | None = (
            self.catalogue.find_movie_by_path_id(item_id)
            if kind == "movies"
            else self.catalogue.find_show_by_path_id(item_id)
        )
        if found is None:
            return Reply(404)
        return Reply(200, [{"title": t, "country": c} for t, c in found.aliases])

    def seasons(self, show_id: str, query: Mapping[str, str]) -> Reply:
        """`GET /shows/:id/seasons`; `?extended=episodes` lists every season's episodes (with
        `number_abs` when `full` is asked too)."""
        show = self.catalogue.find_show_by_path_id(show_id)
        if show is None:
            return Reply(404)
        extended = set(query.get("extended", "").split(","))
        out: list[dict[str, Any]] = []
        for number in sorted({ep.season for ep in show.episodes}):
            season: dict[str, Any] = {"number": number, "ids": {"trakt": None}}
            if "episodes" in extended:
                eps = [ep for ep in show.episodes if ep.season == number]
                season["episodes"] = [
                    {**episode_json(ep), **({"number_abs": ep.number_abs} if "full" in extended
                                            else {})}
                    for ep in sorted(eps, key=lambda e: e.number)
                ]  # fmt: skip
            out.append(season)
        return Reply(200, out)

    def episode_summary(self, show_id: str, season: str, number: str) -> Reply:
        show = self.catalogue.find_show_by_path_id(show_id)
        s, n = _int_or_none(season), _int_or_none(number)
        found = None if show is None else self.catalogue.find_show_episode(show, s, n, None)
        if found is None:
            return Reply(404)
        return Reply(200, episode_json(found.episode))


def _int_or_none(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _history_trakt_id(item: Item, kind: str | None) -> int | None:
    if isinstance(item, Movie):
        return item.ids.trakt
    if kind == "shows":
        return item.show.ids.trakt
    if kind == "episodes":
        return item.episode.ids.trakt
    return None  # seasons: the catalogue has no season ids


def _search_types(text: str) -> list[SearchType]:
    """person and list are valid Trakt types the fake has nothing of."""
    out: list[SearchType] = []
    for part in text.split(","):
        if part in ("person", "list"):
            continue
        try:
            out.append(SearchType(part))
        except ValueError as err:
            raise ValueError(f"unknown search type {part!r}") from err
    return out


def paginate(
    items: Sequence[T],
    query: Mapping[str, str],
    render: Callable[[T], Any],
    default_limit: int = 10,
) -> Reply:
    """One page of `items` with the X-Pagination-* headers."""
    try:
        page = int(query.get("page", "1"))
        limit = int(query.get("limit", str(default_limit)))
    except ValueError:
        return _error(400, "bad_request", "page and limit must be integers")
    if page < 1 or limit < 1:
        return _error(400, "bad_request", "page and limit must be positive")
    chunk = items[(page - 1) * limit : page * limit]
    headers = {
        "X-Pagination-Page": str(page),
        "X-Pagination-Limit": str(limit),
        "X-Pagination-Page-Count": str(max(1, math.ceil(len(items) / limit))),
        "X-Pagination-Item-Count": str(len(items)),
    }
    return Reply(200, [render(x) for x in chunk], headers)
