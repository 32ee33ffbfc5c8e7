"""The fake's movies and shows, how Trakt finds an item in them, and how Trakt prints one.

Matching follows the blueprint's Sync intro: ids first (trakt, imdb, tmdb, tvdb, slug), then
title and year. Items are rendered in the blueprint's minimal shapes, `null` ids included, so
clients meet the same gaps they meet on the real service.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from trakt_scrobbled.events import Ids

ID_ORDER = ("trakt", "imdb", "tmdb", "tvdb", "slug")
"""The order in which Trakt matches ids."""

_MOVIE_ID_KEYS = ("trakt", "slug", "imdb", "tmdb")
_SHOW_ID_KEYS = ("trakt", "slug", "tvdb", "imdb", "tmdb")
_EPISODE_ID_KEYS = ("trakt", "tvdb", "imdb", "tmdb")


class SearchType(StrEnum):
    MOVIE = "movie"
    SHOW = "show"
    EPISODE = "episode"


@dataclass(frozen=True, slots=True)
class Movie:
    title: str
    year: int | None
    ids: Ids
    aliases: tuple[tuple[str, str], ...] = ()
    """(title, country) pairs, as `/movies/:id/aliases` lists them."""


@dataclass(frozen=True, slots=True)
class Episode:
    """An episode as a test declares it; missing trakt ids and titles are filled in on add."""

    season: int
    number: int
    ids: Ids = field(default_factory=Ids)
    number_abs: int | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Show:
    title: str
    year: int | None
    ids: Ids
    episodes: tuple[Episode, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()
    """(title, country) pairs, as `/shows/:id/aliases` lists them."""

    def episode(self, season: int, number: int) -> ShowEpisode:
        """The episode by its numbers, paired with its show (what history and scrobbles hold)."""
        for ep in self.episodes:
            if ep.season == season and ep.number == number:
                return ShowEpisode(self, ep)
        raise KeyError(f"{self.title} has no S{season:02d}E{number:02d}")


@dataclass(frozen=True, slots=True)
class ShowEpisode:
    show: Show
    episode: Episode


Item = Movie | ShowEpisode
"""What can be watched: a movie or one episode of a show."""


@dataclass(frozen=True, slots=True)
class SearchHit:
    type: SearchType
    score: float | None
    found: Movie | Show | ShowEpisode


def item_key(item: Item) -> tuple[str, int]:
    """A stable identity for an item (catalogue items always carry a trakt id)."""
    if isinstance(item, Movie):
        return ("movie", item.ids.trakt or 0)
    return ("episode", item.episode.ids.trakt or 0)


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _ids_json(ids: Ids, keys: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {k: getattr(ids, k) for k in keys}
    for k in ID_ORDER:
        v = getattr(ids, k)
        if v is not None:
            out.setdefault(k, v)
    return out


def movie_json(movie: Movie) -> dict[str, Any]:
    return {"title": movie.title, "year": movie.year, "ids": _ids_json(movie.ids, _MOVIE_ID_KEYS)}


def show_json(show: Show) -> dict[str, Any]:
    return {"title": show.title, "year": show.year, "ids": _ids_json(show.ids, _SHOW_ID_KEYS)}


def episode_json(ep: Episode) -> dict[str, Any]:
    return {
        "season": ep.season,
        "number": ep.number,
        "title": ep.title,
        "ids": _ids_json(ep.ids, _EPISODE_ID_KEYS),
    }


def item_json(item: Item) -> dict[str, Any]:
    """The `movie` or `episode` + `show` members of a scrobble, history or search answer."""
    if isinstance(item, Movie):
        return {"movie": movie_json(item)}
    return {"episode": episode_json(item.episode), "show": show_json(item.show)}


def hit_json(hit: SearchHit) -> dict[str, Any]:
    out: dict[str, Any] = {"type": str(hit.type), "score": hit.score}
    found = hit.found
    if isinstance(found, Show):
        out["show"] = show_json(found)
    else:
        out.update(item_json(found))
    return out


def _ids_match(have: Ids, want: Ids) -> bool:
    """True when the first id `want` names (in Trakt's order) equals the one `have` holds."""
    for key in ID_ORDER:
        wanted = getattr(want, key)
        if wanted is not None:
            return bool(getattr(have, key) == wanted)
    return False


def _title_match(title: str, year: int | None, want_title: object, want_year: object) -> bool:
    if not isinstance(want_title, str) or _words(want_title) != _words(title):
        return False
    return not isinstance(want_year, int) or want_year == year


def _score(query: str, text: str) -> float | None:
    """Exact title > substring > some words; None when no word of the query is in the text."""
    q, t = " ".join(_words(query)), " ".join(_words(text))
    if not q or not t:
        return None
    if q == t:
        return 1000.0
    if q in t:
        return round(500.0 * len(q) / len(t), 4)
    qw = _words(query)
    matched = sum(1 for w in qw if w in set(_words(text)))
    return round(100.0 * matched / len(qw), 4) if matched else None


def _best_score(query: str, texts: Iterable[str]) -> float | None:
    """Trakt searches a title and its aliases (the blueprint's search fields)."""
    return max((sc for sc in (_score(query, t) for t in texts) if sc is not None), default=None)


def _year_filter(years: str | None) -> tuple[int, int] | None:
    if not years:
        return None
    m = re.fullmatch(r"(\d{4})(?:-(\d{4}))?", years.strip())
    if not m:
        raise ValueError(f"bad years filter {years!r}")
    lo = int(m.group(1))
    return (lo, int(m.group(2) or lo))


class Catalogue:
    """What the fake Trakt knows about; tests add to it, requests only read it.

    Not thread-safe on its own: `FakeTrakt` guards it with its lock.
    """

    def __init__(self) -> None:
        self._movies: list[Movie] = []
        self._shows: list[Show] = []
        self._next_trakt = 100_000

    # --- building --------------------------------------------------------------------------

    def _trakt_id(self, explicit: int | None) -> int:
        if explicit is not None:
            self._next_trakt = max(self._next_trakt, explicit + 1)
            return explicit
        self._next_trakt += 1
        return self._next_trakt - 1

    def add_movie(
        self,
        title: str,
        year: int | None,
        ids: Ids | None = None,
        aliases: Iterable[tuple[str, str]] = (),
    ) -> Movie:
        ids = ids or Ids()
        slug = ids.slug or _slugify(f"{title} {year}" if year else title)
        movie = Movie(
            title, year, replace(ids, trakt=self._trakt_id(ids.trakt), slug=slug), tuple(aliases)
        )
        self._movies.append(movie)
        return movie

    def add_show(
        self,
        title: str,
        year: int | None,
        ids: Ids | None = None,
        episodes: Iterable[Episode] = (),
        aliases: Iterable[tuple[str, str]] = (),
    ) -> Show:
        ids = ids or Ids()
        full_ids = replace(ids, trakt=self._trakt_id(ids.trakt), slug=ids.slug or _slugify(title))
        eps = tuple(
            replace(
                ep,
                ids=replace(ep.ids, trakt=self._trakt_id(ep.ids.trakt)),
                title=ep.title or f"Episode {ep.number}",
            )
            for ep in episodes
        )
        show = Show(title, year, full_ids, eps, tuple(aliases))
        self._shows.append(show)
        return show

    def load(self, data: object) -> None:
        """Adds what a catalogue JSON document lists (see `__main__ --catalogue`)."""
        if not isinstance(data, dict):
            raise ValueError("a catalogue is a JSON object with 'movies' and 'shows' lists")
        for m in data.get("movies", []):
            aliases = [(a["title"], a.get("country", "us")) for a in m.get("aliases", [])]
            self.add_movie(m["title"], m.get("year"), Ids.from_json(m.get("ids")), aliases)
        for s in data.get("shows", []):
            eps = [
                Episode(
                    e["season"],
                    e["number"],
                    Ids.from_json(e.get("ids")),
                    e.get("number_abs"),
                    e.get("title"),
                )
                for e in s.get("episodes", [])
            ]
            aliases = [(a["title"], a.get("country", "us")) for a in s.get("aliases", [])]
            self.add_show(s["title"], s.get("year"), Ids.from_json(s.get("ids")), eps, aliases)

    def load_file(self, path: Path) -> None:
        self.load(json.loads(path.read_text(encoding="utf-8")))

    # --- finding ---------------------------------------------------------------------------

    def _episodes(self) -> Iterator[ShowEpisode]:
        for show in self._shows:
            for ep in show.episodes:
                yield ShowEpisode(show, ep)

    def find_movie(self, ids: Ids, title: object = None, year: object = None) -> Movie | None:
        if ids:
            return next((m for m in self._movies if _ids_match(m.ids, ids)), None)
        return next((m for m in self._movies if _title_match(m.title, m.year, title, year)), None)

    def find_show(self, ids: Ids, title: object = None, year: object = None) -> Show | None:
        if ids:
            return next((s for s in self._shows if _ids_match(s.ids, ids)), None)
        return next((s for s in self._shows if _title_match(s.title, s.year, title, year)), None)

    def find_episode(self, ids: Ids) -> ShowEpisode | None:
        if not ids:
            return None
        return next((se for se in self._episodes() if _ids_match(se.episode.ids, ids)), None)

    def find_show_episode(
        self, show: Show, season: int | None, number: int | None, number_abs: int | None
    ) -> ShowEpisode | None:
        for ep in show.episodes:
            if number_abs is not None and number is None:
                if ep.number_abs == number_abs:
                    return ShowEpisode(show, ep)
            elif ep.season == season and ep.number == number:
                return ShowEpisode(show, ep)
        return None

    # --- search ----------------------------------------------------------------------------

    def search_text(
        self, types: Sequence[SearchType], query: str, years: str | None = None
    ) -> list[SearchHit]:
        """Hits ordered by score, best first; raises ValueError on a malformed `years`."""
        span = _year_filter(years)

        def year_ok(year: int | None) -> bool:
            return span is None or (year is not None and span[0] <= year <= span[1])

        hits: list[SearchHit] = []
        if SearchType.MOVIE in types:
            for m in self._movies:
                score = _best_score(query, [m.title, *(t for t, _ in m.aliases)])
                if score is not None and year_ok(m.year):
                    hits.append(SearchHit(SearchType.MOVIE, score, m))
        if SearchType.SHOW in types:
            for s in self._shows:
                score = _best_score(query, [s.title, *(t for t, _ in s.aliases)])
                if score is not None and year_ok(s.year):
                    hits.append(SearchHit(SearchType.SHOW, score, s))
        if SearchType.EPISODE in types:
            for se in self._episodes():
                scores = [_score(query, se.episode.title or ""), _score(query, se.show.title)]
                best = max((s for s in scores if s is not None), default=None)
                if best is not None and year_ok(se.show.year):
                    hits.append(SearchHit(SearchType.EPISODE, best, se))
        hits.sort(key=lambda h: -(h.score or 0.0))
        return hits

    def lookup_id(self, id_type: str, value: str, types: Sequence[SearchType]) -> list[SearchHit]:
        """Everything whose `id_type` id equals `value`; numeric ids compare as integers."""
        if id_type not in ("trakt", "imdb", "tmdb", "tvdb"):
            raise ValueError(f"unknown id type {id_type!r}")
        want: object = value
        if id_type != "imdb":
            if not value.isdigit():
                return []
            want = int(value)
        hits: list[SearchHit] = []
        if SearchType.MOVIE in types:
            hits += [
                SearchHit(SearchType.MOVIE, None, m)
                for m in self._movies
                if getattr(m.ids, id_type) == want
            ]
        if SearchType.SHOW in types:
            hits += [
                SearchHit(SearchType.SHOW, None, s)
                for s in self._shows
                if getattr(s.ids, id_type) == want
            ]
        if SearchType.EPISODE in types:
            hits += [
                SearchHit(SearchType.EPISODE, None, se)
                for se in self._episodes()
                if getattr(se.episode.ids, id_type) == want
            ]
        return hits

    def find_movie_by_path_id(self, value: str) -> Movie | None:
        """A movie by the `{id}` of a `/movies/{id}/...` URL: trakt id, slug or IMDB id."""
        for m in self._movies:
            if value in (str(m.ids.trakt), m.ids.slug, m.ids.imdb):
                return m
        return None

    def find_show_by_path_id(self, value: str) -> Show | None:
        """A show by the `{id}` of a `/shows/{id}/...` URL: trakt id, slug or IMDB id."""
        for s in self._shows:
            if value in (str(s.ids.trakt), s.ids.slug, s.ids.imdb):
                return s
        return None
