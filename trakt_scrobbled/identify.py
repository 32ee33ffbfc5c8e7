"""`MediaInfo → TraktItem`: ids from the player first, else the file name parsed and searched.

Order (DESIGN.md, "Identification order"): user overrides win; then ids the player gives
(episode ids before show ids + numbers); then ids written in the path (`{imdb-tt…}`); then the
title (the player's, or `rules.py`'s reading of the file name and its folders) searched on
Trakt, with every answer, found or not, cached in `identify_cache` so a show is searched once.
A search answer is taken only when it is what was parsed (the title or a Trakt alias, the year
within one, the episode known to Trakt): Trakt's top score is not an identification.
Trailers, samples, extras, short files and what is not media (camera clips, recordings, disc
structure files) are never identified. When Trakt cannot be reached the answer says
`retry_later` and nothing is cached: an outage never costs a watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import sqlite3
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from pathlib import PurePosixPath
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

from trakt_scrobbled.clock import Clock
from trakt_scrobbled.events import Ids, MediaInfo, MediaType, TraktItem
from trakt_scrobbled.trakt.client import TraktClient, TraktResponse
from trakt_scrobbled.trakt.errors import (
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    TraktError,
    TransportError,
)

log = logging.getLogger(__name__)

_T = TypeVar("_T")

__all__ = [
    "Guess",
    "Identification",
    "Identifier",
    "Override",
    "identify_paths",
    "ids_in",
    "parse_path",
    "split_url",
]

# Reasons, as users read them in `identify` and `status`.
SAMPLE = "sample"
TRAILER = "trailer"
EXTRA = "extra"
NO_TITLE = "no title"
NOT_A_VIDEO = "not a video"
NO_EPISODE_NUMBER = "no episode number"
TOO_SHORT = "too short"
NOT_FOUND = "not found on Trakt"
UNREACHABLE = "Trakt unreachable"
DAILY_UNSUPPORTED = "daily shows not supported yet"
OFFLINE = "offline: not searched on Trakt"

RULES_VERSION = 2
"""Bumped when recognition changes what a name means: cached readings of names are redone."""

EXCLUDED_REASONS = frozenset({SAMPLE, TRAILER, EXTRA})
"""Never scrobbled, whatever ids or overrides say."""

VIDEO_EXTENSIONS = frozenset(
    {
        "3g2", "3gp", "asf", "avi", "bdmv", "divx", "dv", "f4v", "flv", "ifo", "iso", "m2t",
        "m2ts", "m2v", "m4v", "mk3d", "mkv", "mov", "mp4", "mpeg", "mpg", "mts", "mxf", "nsv",
        "nuv", "ogm", "ogv", "qt", "rm", "rmvb", "strm", "tp", "trp", "ts", "vob", "webm", "wmv",
        "wtv", "y4m",
    }
)  # fmt: skip

_ID_TAG = re.compile(r"[\[{](imdb|tmdb|tvdb)(?:id)?[-=]([a-z0-9]+)[\]}]", re.IGNORECASE)
_IMDB = re.compile(r"tt\d{7,}")
_SEARCH_SPECIALS = re.compile(r"""[+\-&|!(){}\[\]^"~*?:/\\]+""")


@dataclass(frozen=True, slots=True)
class Guess:
    """What a path says about itself, offline; the fields are `identify --json`'s contract."""

    path: str
    type: MediaType = MediaType.UNKNOWN
    title: str | None = None
    """The movie's or the show's."""
    year: int | None = None
    season: int | None = None
    episode: int | None = None
    episodes: tuple[int, ...] = ()
    """Every episode number of the file (one for a plain episode, more for a multi-episode file)."""
    absolute: int | None = None
    """Absolute episode number (anime), when the name has no season."""
    date: str | None = None
    """Air date of a daily show, `YYYY-MM-DD`."""
    reason: str | None = None
    """Why `type` is unknown, or why it must not be scrobbled (sample, trailer, extra)."""
    ids: Ids | None = None
    """The movie's or the show's: written in the path (`{imdb-tt…}`, `[tmdbid-…]`), or, in an
    `Identification`, what the override or Trakt said."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Guess:
        return cls(
            path=str(data["path"]),
            type=MediaType(data["type"]),
            title=data.get("title"),
            year=data.get("year"),
            season=data.get("season"),
            episode=data.get("episode"),
            episodes=tuple(data.get("episodes") or ()),
            absolute=data.get("absolute"),
            date=data.get("date"),
            reason=data.get("reason"),
            ids=Ids.from_json(data["ids"]) if data.get("ids") else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "type": self.type.value,
            "title": self.title,
            "year": self.year,
            "season": self.season,
            "episode": self.episode,
            "episodes": list(self.episodes) if self.episodes else None,
            "absolute": self.absolute,
            "date": self.date,
            "reason": self.reason,
            "ids": self.ids.to_json() if self.ids else None,
        }


# ------------------------------------------------------------------------------- parsing


def parse_path(path: str) -> Guess:
    """Read a movie or an episode out of a file name and its folders (no I/O, no network).

    guessit does the reading; around it: URLs, disc structures (`VIDEO_TS`, `BDMV`), the
    folders and suffixes that mark extras, and normalization of guessit's odd value types.
    """
    return _parse(path, check_extension=True)


def _parse(path: str, *, check_extension: bool) -> Guess:
    # The parsers cost ~15 MB and build their rules on first use: the daemon parses in a child
    # process (parse_worker) so that it never loads them.
    from trakt_scrobbled.rules import parse

    return parse(path, check_extension=check_extension)


def split_url(path: str) -> tuple[str, str | None]:
    """(what to show, the local-looking path to parse or None): URLs lose query and credentials.

    A query string can carry a token (`?X-Plex-Token=…`); it must never reach a log or output.
    """
    if "://" not in path:
        return path, path
    parts = urlsplit(path)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    shown = (
        f"{parts.scheme}://{host}{parts.path}" if parts.scheme != "file" else unquote(parts.path)
    )
    local = unquote(parts.path)
    ext = PurePosixPath(local).suffix.lower().lstrip(".")
    if parts.scheme != "file" and ext not in VIDEO_EXTENSIONS:  # a stream, a web page
        return shown, None
    return shown, local


def _all(value: object, kind: type[_T]) -> list[_T]:
    """guessit answers a value or a list of values; bools are never numbers."""
    items = value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, kind) and not isinstance(v, bool)]


def _first(value: object, kind: type[_T]) -> _T | None:
    items = _all(value, kind)
    return items[0] if items else None


def ids_in(found: dict[str, Any], path: str) -> Ids | None:
    """Ids written in a path (`{imdb-tt…}`, `[tmdbid-…]`) or found there by guessit."""
    imdb = _first(found.get("imdb_id"), str)
    tmdb = _first(found.get("tmdb_id"), int)
    tvdb = _first(found.get("tvdb_id"), int)
    for kind, value in _ID_TAG.findall(path):
        kind = kind.lower()
        if kind == "imdb" and imdb is None and _IMDB.fullmatch(value.lower()):
            imdb = value.lower()
        elif kind == "tmdb" and tmdb is None and value.isdigit():
            tmdb = int(value)
        elif kind == "tvdb" and tvdb is None and value.isdigit():
            tvdb = int(value)
    ids = Ids(imdb=imdb, tmdb=tmdb, tvdb=tvdb)
    return ids if ids else None


# ------------------------------------------------------------------------------- identifying


@dataclass(frozen=True, slots=True)
class Override:
    """A user's fix for a wrong match: files whose full path matches `pattern` are this item.

    `media_type` EPISODE means "episodes of the show with these ids": the season and episode
    numbers still come from the file name.
    """

    pattern: str
    """A glob (`fnmatch`, case-sensitive; `*` also matches `/`) on the full path."""
    media_type: MediaType
    ids: Ids

    def __post_init__(self) -> None:
        if self.media_type is MediaType.UNKNOWN:
            raise ValueError("an override is a movie or a show")
        if not self.ids:
            raise ValueError("an override needs ids")

    def matches(self, path: str) -> bool:
        # Players give absolute paths; `identify` may be given a relative one.
        if "://" not in path and not os.path.isabs(path) and not re.match(r"^[A-Za-z]:\\", path):
            return fnmatchcase(path, self.pattern) or fnmatchcase(
                os.path.abspath(path), self.pattern
            )
        return fnmatchcase(path, self.pattern)


@dataclass(frozen=True, slots=True)
class Identification:
    """The answer for one `MediaInfo`: an item, or why not (and whether trying later may help)."""

    item: TraktItem | None
    guess: Guess | None = None
    """What the path (or, lacking one, the title) says, with the movie's or show's ids if known."""
    reason: str | None = None
    retry_later: bool = False
    rejected: tuple[str, ...] = ()
    """Trakt's answers that were not taken, and why (`identify` shows them)."""

    @property
    def episodes(self) -> tuple[int, ...]:
        """Every episode number of the file (`S01E01E02` -> 1, 2); one for a plain episode,
        none for a movie or an unidentified file. The item itself is the first of them."""
        item = self.item
        if item is None or item.number is None:
            return ()
        if self.guess is not None and item.number in self.guess.episodes:
            return self.guess.episodes
        return (item.number,)

    def to_json(self) -> dict[str, Any]:
        """One line of `identify --json`: the guess, corrected by what Trakt said."""
        out = self.guess.to_json() if self.guess else {**Guess("").to_json(), "path": None}
        item = self.item
        if item is None:
            if self.reason is not None:
                out["type"] = MediaType.UNKNOWN.value
                out["reason"] = self.reason
            if self.rejected:
                out["rejected"] = list(self.rejected)
            return out
        out["type"] = item.media_type.value
        out["reason"] = None
        if item.media_type is MediaType.MOVIE:
            out["title"] = item.title or out["title"]
            out["year"] = item.year or out["year"]
            out["ids"] = item.ids.to_json()
            return out
        out["title"] = item.show_title or out["title"]
        out["ids"] = (item.ids or item.show_ids).to_json()
        if item.number is not None:
            out["season"] = item.season
            out["episode"] = item.number
            if not out["episodes"]:
                out["episodes"] = [item.number]
        if item.number_abs is not None:
            out["absolute"] = item.number_abs
        return out


@dataclass(frozen=True, slots=True)
class _Found:
    """A movie or show from Trakt's search (or the cache of it)."""

    ids: Ids
    title: str | None = None
    year: int | None = None
    score: float = 0.0


class Parser(Protocol):
    async def parse(self, path: str, *, check_extension: bool) -> Guess: ...


class InProcessParser:
    """guessit in this process, off the event loop (for one-shot commands and tests)."""

    def __init__(self) -> None:
        # guessit is not known to be thread-safe: one parse at a time.
        self._lock = asyncio.Lock()

    async def parse(self, path: str, *, check_extension: bool) -> Guess:
        async with self._lock:
            return await asyncio.to_thread(_parse, path, check_extension=check_extension)


def parse_any(path: str, *, check_extension: bool) -> Guess:
    """`parse_path`, also for names that are not files (a player's title)."""
    return _parse(path, check_extension=check_extension)


class Identifier:
    """Turns what a player knows into a Trakt item; see the module docstring for the order.

    `client` None means offline: only overrides, player ids, ids in the path and answers
    already cached identify.
    """

    def __init__(
        self,
        client: TraktClient | None,
        conn: sqlite3.Connection,
        clock: Clock,
        *,
        overrides: Sequence[Override] = (),
        min_duration: float = 120.0,
        cache_ttl: float = 30 * 86400,
        miss_ttl: float = 86400,
        parser: Parser | None = None,
    ) -> None:
        self._client = client
        self._conn = conn
        self._clock = clock
        self._overrides = tuple(overrides)
        self._min_duration = min_duration
        self._cache_ttl = cache_ttl
        self._miss_ttl = miss_ttl
        self._parser = parser or InProcessParser()
        # One search at a time, so two plays of the same show cause one request, not two.
        self._search_lock = asyncio.Lock()

    async def identify(self, media: MediaInfo) -> Identification:
        guess = await self._guess(media)
        if media.duration is not None and 0 < media.duration < self._min_duration:
            return Identification(None, guess, TOO_SHORT)
        if guess is not None and guess.reason in EXCLUDED_REASONS:
            return Identification(None, guess, guess.reason)
        if media.path:
            for override in self._overrides:
                if override.matches(media.path):
                    return _from_override(override, media, guess)
        answer = _from_player(media, guess) or _from_path_ids(media, guess)
        if answer is not None:
            return answer
        return await self._from_search(media, guess)

    async def _guess(self, media: MediaInfo) -> Guess | None:
        source = media.path or (media.title if media.media_type is MediaType.UNKNOWN else None)
        if not source:
            return None
        # A file seen before costs no parse (and no parsing process): its reading is cached
        # under the rules' version, so better rules read it again.
        key = f"parse|{RULES_VERSION}|{int(bool(media.path))}|{source}"
        raw = self._cache_raw(key)
        if raw is not None:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                return Guess.from_json(json.loads(raw))
        guess = await self._parser.parse(source, check_extension=bool(media.path))
        self._cache_put_raw(key, json.dumps(guess.to_json()), self._cache_ttl)
        return guess

    async def _from_search(self, media: MediaInfo, guess: Guess | None) -> Identification:
        query = _query_of(media, guess)
        if query is None:
            reason = guess.reason if guess is not None and guess.reason else NO_TITLE
            return Identification(None, guess, reason)
        kind, title, year = query
        rejected: list[str] = []
        if self._client is None:
            hit, cached = self._cache_get(_search_key(kind, title, year))
            if not hit or cached is None:
                return Identification(None, guess, OFFLINE)
        try:
            found = await self._search(self._client, kind, title, year, rejected)
            if found is not None and kind == "show":
                answer = _episode_of(found.ids, found.title, media, guess)
                missing = await self._missing_episode(self._client, answer.item)
                if missing is not None:
                    return Identification(None, answer.guess, missing)
                return answer
        except (TransportError, ServerError, RateLimited) as err:
            log.debug("search for %r not done: %s", title, err)
            return Identification(None, guess, UNREACHABLE, retry_later=True)
        except Forbidden as err:
            # A wrong or missing client id is fixed in the config: keep the play until then.
            return Identification(None, guess, f"Trakt search failed: {err}", retry_later=True)
        except TraktError as err:
            return Identification(None, guess, f"Trakt search failed: {err}")
        if found is None:
            return Identification(None, guess, NOT_FOUND, rejected=tuple(rejected))
        item = TraktItem(MediaType.MOVIE, found.ids, title=found.title, year=found.year)
        return Identification(item, _with_ids(guess, found.ids))

    async def _search(
        self,
        client: TraktClient | None,
        kind: str,
        title: str,
        year: int | None,
        rejected: list[str],
    ) -> _Found | None:
        key = _search_key(kind, title, year)
        async with self._search_lock:
            hit, found = self._cache_get(key)
            if hit or client is None:
                return found
            found = await _search_trakt(client, kind, title, year, rejected, self._aliases)
            self._cache_put(key, found)
        if found is None:
            log.info("no %s called %r (%s) on Trakt", kind, title, year or "any year")
        return found

    async def _aliases(self, client: TraktClient, kind: str, found: _Found) -> list[str]:
        """Trakt's other titles for a movie or show (`/movies/:id/aliases`), cached."""
        ident = found.ids.trakt or found.ids.slug
        if ident is None:
            return []
        key = f"aliases|{kind}|{ident}"
        raw = self._cache_raw(key)
        if raw is not None:
            try:
                cached = json.loads(raw)
            except ValueError:
                cached = None
            if isinstance(cached, list):
                return [t for t in cached if isinstance(t, str)]
        try:
            resp = await client.get(f"/{kind}s/{ident}/aliases")
            entries = resp.data if isinstance(resp.data, list) else []
        except NotFound:
            entries = []
        titles = [
            e["title"] for e in entries if isinstance(e, dict) and isinstance(e.get("title"), str)
        ]
        self._cache_put_raw(key, json.dumps(titles), self._cache_ttl)
        return titles

    async def _missing_episode(
        self, client: TraktClient | None, item: TraktItem | None
    ) -> str | None:
        """Why Trakt has no such episode of the show, or None when it has (or cannot say)."""
        if item is None or item.show_ids is None:
            return None
        ident = item.show_ids.trakt or item.show_ids.slug
        if ident is None:
            return None
        if item.number is not None and item.season is not None:
            key = f"episode|{ident}|{item.season}|{item.number}"
            path = f"/shows/{ident}/seasons/{item.season}/episodes/{item.number}"
            known = await self._cached_exists(client, key, path, None)
            what = f"S{item.season:02}E{item.number:02}"
        elif item.number_abs is not None:
            key = f"absolute|{ident}|{item.number_abs}"
            path = f"/shows/{ident}/seasons"
            known = await self._cached_exists(client, key, path, item.number_abs)
            what = f"episode {item.number_abs} (absolute)"
        else:
            return None
        if known is not False:
            return None
        return f"no {what} of {item.show_title or 'this show'} on Trakt"

    async def _cached_exists(
        self, client: TraktClient | None, key: str, path: str, absolute: int | None
    ) -> bool | None:
        """Whether Trakt has the episode (cached); None when it cannot be asked now."""
        raw = self._cache_raw(key)
        if raw is not None:
            return raw == "1"
        if client is None:
            return None
        try:
            if absolute is None:
                await client.get(path)
                exists = True
            else:
                resp = await client.get(path, {"extended": "full,episodes"})
                exists = _has_absolute(resp.data, absolute)
        except NotFound:
            exists = False
        self._cache_put_raw(
            key, "1" if exists else "0", self._cache_ttl if exists else self._miss_ttl
        )
        return exists

    def _cache_raw(self, key: str) -> str | None:
        try:
            row = self._conn.execute(
                "SELECT value, expires_at FROM identify_cache WHERE key = ?", (key,)
            ).fetchone()
        except sqlite3.Error:
            return None
        if row is None or row[0] is None or float(row[1]) <= self._clock.time():
            return None
        return str(row[0])

    def _cache_put_raw(self, key: str, value: str, ttl: float) -> None:
        try:
            self._conn.execute(
                "INSERT INTO identify_cache (key, value, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "expires_at = excluded.expires_at",
                (key, value, self._clock.time() + ttl),
            )
        except sqlite3.Error as err:
            log.warning("identification cache not written: %s", err)

    def _cache_get(self, key: str) -> tuple[bool, _Found | None]:
        try:
            row = self._conn.execute(
                "SELECT value, expires_at FROM identify_cache WHERE key = ?", (key,)
            ).fetchone()
        except sqlite3.Error as err:
            log.warning("identification cache unreadable, searching again: %s", err)
            return False, None
        if row is None or float(row[1]) <= self._clock.time():
            return False, None
        if row[0] is None:
            return True, None
        try:
            data = json.loads(row[0])
        except ValueError:
            return False, None
        if not isinstance(data, dict):
            return False, None
        ids = Ids.from_json(data.get("ids"))
        if not ids:
            return False, None
        title, year = data.get("title"), data.get("year")
        return True, _Found(
            ids,
            title if isinstance(title, str) else None,
            year if isinstance(year, int) else None,
        )

    def _cache_put(self, key: str, found: _Found | None) -> None:
        now = self._clock.time()
        if found is None:
            value, expires = None, now + self._miss_ttl
        else:
            value = json.dumps(
                {"ids": found.ids.to_json(), "title": found.title, "year": found.year}
            )
            expires = now + self._cache_ttl
        try:
            self._conn.execute("DELETE FROM identify_cache WHERE expires_at <= ?", (now,))
            self._conn.execute(
                "INSERT INTO identify_cache (key, value, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "expires_at = excluded.expires_at",
                (key, value, expires),
            )
        except sqlite3.Error as err:
            log.warning("identification cache not written: %s", err)


NOT_A_FILE = "a directory, not a file"
NO_SUCH_FILE = "no such file"


async def identify_paths(
    paths: Iterable[str], identifier: Identifier | None, *, offline: bool = False
) -> list[dict[str, Any]]:
    """`identify PATH...`: one `--json` object per path; `identifier` None parses names only.

    Paths are parsed as given: the working directory's folders never lend a name (overrides
    still see the absolute path). A directory is said as such; a missing file too, unless
    `offline` (names only: the paths need not exist). `offline` answers what the name says,
    or what the cache and overrides say, as the daemon would.
    """
    out: list[dict[str, Any]] = []
    for path in paths:
        problem = await asyncio.to_thread(
            _file_problem, path, must_exist=not offline and identifier is not None
        )
        if problem is not None:
            out.append(Guess(path, reason=problem).to_json())
            continue
        if identifier is None:
            guess = await asyncio.to_thread(parse_path, path)
            out.append(guess.to_json())
            continue
        found = await identifier.identify(MediaInfo(path=path))
        if found.item is None and found.reason == OFFLINE and found.guess is not None:
            out.append(found.guess.to_json())  # offline: what the name says
        else:
            out.append(found.to_json())
    return out


def _file_problem(path: str, *, must_exist: bool) -> str | None:
    if "://" in path:
        return None
    if os.path.isdir(path):
        return NOT_A_FILE
    if must_exist and not os.path.exists(path):
        return NO_SUCH_FILE
    return None


def _has_absolute(seasons: object, number: int) -> bool:
    """Whether a show's `/seasons?extended=full,episodes` has this absolute number: by
    `number_abs`, or, where Trakt gives none, by the position among regular episodes."""
    if not isinstance(seasons, list):
        return False
    regular = 0
    with_abs = False
    for season in seasons:
        if not isinstance(season, dict) or not isinstance(season.get("episodes"), list):
            continue
        for ep in season["episodes"]:
            if not isinstance(ep, dict):
                continue
            value = ep.get("number_abs")
            if isinstance(value, int) and not isinstance(value, bool):
                with_abs = True
                if value == number:
                    return True
            if season.get("number") != 0:
                regular += 1
    return not with_abs and 0 < number <= regular


def _from_override(override: Override, media: MediaInfo, guess: Guess | None) -> Identification:
    if override.media_type is MediaType.MOVIE:
        item = TraktItem(MediaType.MOVIE, override.ids)
        return Identification(item, _with_ids(guess, override.ids))
    return _episode_of(override.ids, None, media, guess)


def _from_player(media: MediaInfo, guess: Guess | None) -> Identification | None:
    """Steps 1 and 2: ids the player gives, episode ids before show ids + numbers."""
    kind = media.media_type
    if kind is MediaType.MOVIE and media.ids:
        item = TraktItem(MediaType.MOVIE, media.ids, title=media.title, year=media.year)
        return Identification(item, guess)
    if kind is MediaType.EPISODE and media.ids:
        item = TraktItem(
            MediaType.EPISODE,
            media.ids,
            show_ids=media.show_ids,
            show_title=media.show_title,
            season=media.season,
            number=media.episode,
        )
        return Identification(item, guess)
    if kind is not MediaType.MOVIE and media.show_ids:
        return _episode_of(media.show_ids, media.show_title, media, guess)
    return None


def _from_path_ids(media: MediaInfo, guess: Guess | None) -> Identification | None:
    """Ids written in the path (`{imdb-tt…}`), when the player does not contradict the type."""
    if guess is None or not guess.ids or guess.type is MediaType.UNKNOWN:
        return None
    if media.media_type not in (MediaType.UNKNOWN, guess.type):
        return None
    if guess.type is MediaType.MOVIE:
        item = TraktItem(MediaType.MOVIE, guess.ids, title=guess.title, year=guess.year)
        return Identification(item, guess)
    return _episode_of(guess.ids, guess.title, media, guess)


def _episode_of(
    show_ids: Ids, show_title: str | None, media: MediaInfo, guess: Guess | None
) -> Identification:
    """An episode of a known show; the numbers come from the player, else from the path.

    A multi-episode file is scrobbled as its first episode (`Guess.episodes` lists them all).
    """
    season, number, absolute = _numbers(media, guess)
    if number is None and absolute is None:
        daily = guess is not None and guess.date is not None
        reason = DAILY_UNSUPPORTED if daily else NO_EPISODE_NUMBER
        return Identification(None, _with_ids(guess, show_ids), reason)
    item = TraktItem(
        MediaType.EPISODE,
        show_ids=show_ids,
        show_title=show_title,
        season=season if number is not None else None,
        number=number,
        number_abs=absolute,
    )
    return Identification(item, _with_ids(guess, show_ids))


def _numbers(media: MediaInfo, guess: Guess | None) -> tuple[int | None, int | None, int | None]:
    """(season, number, absolute number) of an episode."""
    if media.episode is not None and media.season is not None:
        return media.season, media.episode, None
    if guess is not None and (guess.episode is not None or guess.absolute is not None):
        return guess.season, guess.episode, guess.absolute
    if media.episode is not None:
        return None, None, media.episode  # a number without a season: absolute numbering
    return None, None, None


def _query_of(media: MediaInfo, guess: Guess | None) -> tuple[str, str, int | None] | None:
    """What to search: ("movie" | "show", title, year); the player's words before the path's."""
    if media.media_type is MediaType.MOVIE and media.title:
        return "movie", media.title, media.year
    if media.media_type is MediaType.EPISODE and media.show_title:
        # A player's `year` of an episode is when it aired, not the show's first year.
        return "show", media.show_title, None
    if guess is None or guess.title is None:
        return None
    kind = media.media_type if media.media_type is not MediaType.UNKNOWN else guess.type
    if kind is MediaType.MOVIE:
        return "movie", guess.title, guess.year
    if kind is MediaType.EPISODE:
        return "show", guess.title, guess.year
    return None


def _with_ids(guess: Guess | None, ids: Ids) -> Guess | None:
    if guess is None or guess.ids == ids:
        return guess
    return replace(guess, ids=ids)


def _search_key(kind: str, title: str, year: int | None) -> str:
    return f"{kind}|{_title_key(title)}|{year or ''}"


AliasLookup = Callable[[TraktClient, str, _Found], Awaitable[list[str]]]

_ALIAS_LOOKUPS = 5
"""How many of Trakt's answers (best score first) have their aliases read."""


async def _search_trakt(
    client: TraktClient,
    kind: str,
    title: str,
    year: int | None,
    rejected: list[str],
    aliases: AliasLookup,
) -> _Found | None:
    """`GET /search/{movie|show}`, and an answer only when it is what we searched for.

    Trakt's top score for a few words is not an identification: an answer is taken when its
    title, or one of its aliases, is ours (compared without case, accents or punctuation), and
    its year within one of ours when we have one. Everything else lands in `rejected`.
    """
    # `The Office US`: Trakt calls it "The Office"; the country tells namesakes apart.
    country = _COUNTRY_SUFFIX.match(title)
    bare = country["title"] if country is not None else title
    query = " ".join(_SEARCH_SPECIALS.sub(" ", bare).split()) or bare
    params: dict[str, str | int] = {"query": query}
    if year is not None:
        params["years"] = f"{year - 1}-{year + 1}"
    results = _results(await client.get(f"/search/{kind}", params), kind)
    best = _best(results, title, year)
    if best is None and country is not None:
        namesakes = [f for f in results if f.title and _title_key(f.title) == _title_key(bare)]
        namesakes = [f for f in namesakes if _year_ok(f.year, year)]
        if len(namesakes) == 1:
            return namesakes[0]
    if best is not None:
        return best
    want = _title_key(title)
    looked = 0
    for found in sorted(results, key=lambda f: -f.score):
        if not _year_ok(found.year, year):
            rejected.append(f"{found.title} ({found.year}): year not within one of {year}")
            continue
        if looked < _ALIAS_LOOKUPS:
            looked += 1
            if any(_title_key(a) == want for a in await aliases(client, kind, found)):
                return found
        rejected.append(f"{found.title} ({found.year}): title is not {title!r} nor an alias")
    return None


_COUNTRY_SUFFIX = re.compile(r"^(?P<title>.+?)[ ._]+\(?(?:US|UK|AU|NZ|CA)\)?$")


def _year_ok(found: int | None, want: int | None) -> bool:
    return want is None or (found is not None and abs(found - want) <= 1)


def _results(resp: TraktResponse, kind: str) -> list[_Found]:
    if not isinstance(resp.data, list):
        raise TraktError(f"Trakt answered /search/{kind} with something that is not a list")
    out: list[_Found] = []
    for entry in resp.data:
        obj = entry.get(kind) if isinstance(entry, dict) else None
        if not isinstance(obj, dict):
            continue
        ids = Ids.from_json(obj.get("ids"))
        if not ids:
            continue
        title, year, score = obj.get("title"), obj.get("year"), entry.get("score")
        out.append(
            _Found(
                ids,
                title if isinstance(title, str) else None,
                year if isinstance(year, int) and not isinstance(year, bool) else None,
                float(score) if isinstance(score, int | float) else 0.0,
            )
        )
    return out


def _best(results: list[_Found], title: str, year: int | None) -> _Found | None:
    """The answer whose title is ours: the same year first, then a year off (or any year when
    we have none); Trakt's score only breaks ties."""
    ranked = sorted(results, key=lambda f: -f.score)  # stable: Trakt's order breaks ties
    want = _title_key(title)
    exact = [f for f in ranked if f.title is not None and _title_key(f.title) == want]
    if year is None:
        return exact[0] if exact else None
    for f in exact:
        if f.year == year:
            return f
    return next((f for f in exact if _year_ok(f.year, year)), None)


def _title_key(title: str) -> str:
    """Titles compared without case, accents, punctuation or spaces (`S.H.I.E.L.D.` = `SHIELD`)."""
    decomposed = unicodedata.normalize("NFKD", title.replace("&", " and "))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return "".join(c for c in plain if c.isalnum())
