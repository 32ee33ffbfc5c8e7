"""The vocabulary shared by players, the session machine, identification and the outbox.

Everything here is an immutable value: players describe what they see (the `PlayerEvent`
union, `Playing` carrying `MediaInfo`), identification turns `MediaInfo` into a `TraktItem`, the
session machine turns `SessionEvent`s into `Scrobble` actions that the outbox stores and sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class MediaType(StrEnum):
    MOVIE = "movie"
    EPISODE = "episode"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Ids:
    """External ids of a movie, show or episode, as Trakt's `ids` object names them."""

    trakt: int | None = None
    slug: str | None = None
    imdb: str | None = None
    tmdb: int | None = None
    tvdb: int | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.trakt, self.slug, self.imdb, self.tmdb, self.tvdb))

    def to_json(self) -> dict[str, Any]:
        pairs = (
            ("trakt", self.trakt),
            ("slug", self.slug),
            ("imdb", self.imdb),
            ("tmdb", self.tmdb),
            ("tvdb", self.tvdb),
        )
        return {k: v for k, v in pairs if v is not None}

    @classmethod
    def from_json(cls, data: object) -> Ids:
        if not isinstance(data, dict):
            return cls()

        def _int(key: str) -> int | None:
            v = data.get(key)
            return v if isinstance(v, int) and not isinstance(v, bool) else None

        def _str(key: str) -> str | None:
            v = data.get(key)
            return v if isinstance(v, str) and v else None

        return cls(
            trakt=_int("trakt"),
            slug=_str("slug"),
            imdb=_str("imdb"),
            tmdb=_int("tmdb"),
            tvdb=_int("tvdb"),
        )


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What a player knows about the item it plays; any field may be missing."""

    path: str | None = None
    title: str | None = None
    year: int | None = None
    media_type: MediaType = MediaType.UNKNOWN
    show_title: str | None = None
    season: int | None = None
    episode: int | None = None
    ids: Ids = field(default_factory=Ids)
    show_ids: Ids = field(default_factory=Ids)
    duration: float | None = None
    """Seconds, when the player knows it."""
    episodes: tuple[int, ...] = ()
    """Every episode number of a multi-episode file, when the player knows them."""


@dataclass(frozen=True, slots=True)
class TraktItem:
    """A movie or an episode as Trakt's scrobble and history bodies want it.

    An episode is sent by its own ids when known, else by show ids plus season/number,
    else by show ids plus `number_abs` (absolute numbering, anime).
    """

    media_type: MediaType
    ids: Ids = field(default_factory=Ids)
    title: str | None = None
    year: int | None = None
    show_ids: Ids = field(default_factory=Ids)
    show_title: str | None = None
    season: int | None = None
    number: int | None = None
    number_abs: int | None = None

    def __post_init__(self) -> None:
        if self.media_type is MediaType.UNKNOWN:
            raise ValueError("a TraktItem is a movie or an episode")
        if self.media_type is MediaType.MOVIE and not self.ids:
            raise ValueError("a movie needs ids")
        if self.media_type is MediaType.EPISODE and not self.ids:
            has_numbers = self.number is not None or self.number_abs is not None
            if not self.show_ids or not has_numbers:
                raise ValueError("an episode needs its ids, or show ids and a number")

    def to_json(self) -> dict[str, Any]:
        """The item part of a `/scrobble` or `/sync/history` body."""
        if self.media_type is MediaType.MOVIE:
            movie: dict[str, Any] = {"ids": self.ids.to_json()}
            if self.title:
                movie["title"] = self.title
            if self.year:
                movie["year"] = self.year
            return {"movie": movie}
        if self.ids:
            return {"episode": {"ids": self.ids.to_json()}}
        episode: dict[str, Any] = {}
        if self.number is not None:
            episode["season"] = self.season if self.season is not None else 1
            episode["number"] = self.number
        else:
            episode["number_abs"] = self.number_abs
        show: dict[str, Any] = {"ids": self.show_ids.to_json()}
        if self.show_title:
            show["title"] = self.show_title
        return {"show": show, "episode": episode}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TraktItem:
        """Inverse of `to_json` (used by the outbox to read rows back)."""
        if "movie" in data:
            m = data["movie"]
            return cls(
                MediaType.MOVIE,
                Ids.from_json(m.get("ids")),
                title=m.get("title"),
                year=m.get("year"),
            )
        ep = data.get("episode") or {}
        show = data.get("show") or {}
        return cls(
            MediaType.EPISODE,
            Ids.from_json(ep.get("ids")),
            show_ids=Ids.from_json(show.get("ids")),
            show_title=show.get("title"),
            season=ep.get("season"),
            number=ep.get("number"),
            number_abs=ep.get("number_abs"),
        )

    def describe(self) -> str:
        """A short human label for logs and `status`."""
        if self.media_type is MediaType.MOVIE:
            name = self.title or self.ids.slug or self.ids.imdb or str(self.ids.trakt)
            return f"{name} ({self.year})" if self.year else name
        show = self.show_title or self.show_ids.slug or "episode"
        if self.number is not None:
            return f"{show} S{self.season or 0:02d}E{self.number:02d}"
        if self.number_abs is not None:
            return f"{show} #{self.number_abs}"
        return show


# --- players -> app ---------------------------------------------------------------------------


class EndReason(StrEnum):
    STOPPED = "stopped"
    EOF = "eof"
    REPLACED = "replaced"
    QUIT = "quit"
    ERROR = "error"
    GONE = "gone"
    """The player vanished (killed, crashed, socket closed) without saying goodbye."""


# Each player event names its `source`, the player instance (e.g. ``mpv:/run/user/1000/mpv.sock``,
# ``kodi:127.0.0.1:9090``, ``plex:<player uuid>``): one play at a time per source. Positions and
# durations are in seconds; `None` means the player did not say.


@dataclass(frozen=True, slots=True)
class Playing:
    """A new item started (or was found playing on connect)."""

    source: str
    media: MediaInfo
    position: float | None = None
    duration: float | None = None
    paused: bool = False
    """The item was found paused (e.g. on connect)."""
    speed: float = 1.0
    user: str | None = None
    """Who plays it, as the player names them (a Plex account, a Jellyfin user, the Kodi
    profile): the router's input for the household (router.py); None where the player has no
    users or did not say."""
    user_id: str | None = None
    """The same user's id, where the player has one (a Plex account id)."""


@dataclass(frozen=True, slots=True)
class Paused:
    source: str
    position: float | None = None


@dataclass(frozen=True, slots=True)
class Resumed:
    source: str
    position: float | None = None


@dataclass(frozen=True, slots=True)
class Seeked:
    source: str
    position: float


@dataclass(frozen=True, slots=True)
class Progressed:
    """A sampled position while playing; players throttle these (never one per frame)."""

    source: str
    position: float
    duration: float | None = None
    speed: float | None = None


@dataclass(frozen=True, slots=True)
class Ended:
    """The item ended: stopped, end of file, replaced, player quit or gone."""

    source: str
    position: float | None = None
    reason: EndReason = EndReason.STOPPED


PlayerEvent = Playing | Paused | Resumed | Seeked | Progressed | Ended
"""What an adapter reports; typed, so the lifecycle matches on the class, never on a kind."""


# --- app -> session ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Play:
    """A new playback: `item` is None while it is not (or cannot be) identified."""

    play_id: str
    item: TraktItem | None
    position: float
    duration: float | None
    paused: bool = False
    speed: float = 1.0
    items: tuple[TraktItem, ...] = ()
    """A multi-episode file: every episode, in order (`item` is then the first)."""
    seen: frozenset[int] = frozenset()
    """Parts recorded watched within the rewatch window (see `Identified.seen`)."""


@dataclass(frozen=True, slots=True)
class Identified:
    """Identification finished: `item` None means it gave up (nothing is ever sent)."""

    item: TraktItem | None
    parts: tuple[TraktItem, ...] = ()
    """A multi-episode file: every episode, in order, one part of the file each."""
    seen: frozenset[int] = frozenset()
    """Parts (0-based) already recorded watched within the rewatch window: the shell asks the
    outbox, the machine decides. Such a part is still started, and closed under 80 %."""


@dataclass(frozen=True, slots=True)
class Pause:
    position: float | None = None


@dataclass(frozen=True, slots=True)
class Resume:
    position: float | None = None


@dataclass(frozen=True, slots=True)
class Seek:
    position: float


@dataclass(frozen=True, slots=True)
class Progress:
    position: float
    duration: float | None = None
    speed: float | None = None


@dataclass(frozen=True, slots=True)
class Stop:
    """The playback ended; `position` None means extrapolate from the last known one."""

    position: float | None = None


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: lets the machine act on its own deadlines (a multi-episode boundary)."""


SessionEvent = Play | Identified | Pause | Resume | Seek | Progress | Stop | Tick


# --- session -> outbox ------------------------------------------------------------------------


class ScrobbleVerb(StrEnum):
    START = "start"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class Scrobble:
    """One Trakt scrobble call to make: `/scrobble/<verb>` with `item` and `progress`.

    `watched` is True for a stop at or above the watched threshold: Trakt records a play.
    """

    verb: ScrobbleVerb
    play_id: str
    item: TraktItem
    progress: float
    watched: bool = False

    def body(self) -> dict[str, Any]:
        return {**self.item.to_json(), "progress": self.progress}
