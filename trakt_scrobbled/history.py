"""Late watches as `/sync/history` entries: building batches and recognising what Trakt has.

Trakt does not de-duplicate history, so an entry whose earlier send may have arrived is only
re-sent after `GET /sync/history` shows it is not there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

BATCH_SIZE = 100
"""Entries per POST: a backlog of 1000 watches goes out in 10 calls."""


def iso(ts: float) -> str:
    """Trakt's date format: UTC with milliseconds."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{int(ts * 1000) % 1000:03d}Z"
    )


def parse_iso(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def can_go_to_history(scrobble_body: Mapping[str, Any]) -> bool:
    """Absolute (anime) numbering has no history form; those stay scrobbles."""
    episode = scrobble_body.get("episode")
    return not (isinstance(episode, Mapping) and "number_abs" in episode and "ids" not in episode)


def build_batch(entries: Sequence[tuple[Mapping[str, Any], float]]) -> dict[str, list[Any]]:
    """One `/sync/history` body from (scrobble body, watched_at) pairs."""
    movies: list[dict[str, Any]] = []
    episodes: list[dict[str, Any]] = []
    shows: dict[str, dict[str, Any]] = {}
    for body, watched_at in entries:
        when = iso(watched_at)
        if "movie" in body:
            movies.append({**body["movie"], "watched_at": when})
            continue
        episode = body["episode"]
        if "ids" in episode:
            episodes.append({"ids": episode["ids"], "watched_at": when})
            continue
        show = body["show"]
        key = repr(sorted(show["ids"].items()))
        entry = shows.setdefault(key, {"ids": show["ids"], "seasons": []})
        seasons: list[dict[str, Any]] = entry["seasons"]
        season = next((s for s in seasons if s["number"] == episode["season"]), None)
        if season is None:
            season = {"number": episode["season"], "episodes": []}
            seasons.append(season)
        season["episodes"].append({"number": episode["number"], "watched_at": when})
    batch: dict[str, list[Any]] = {}
    if movies:
        batch["movies"] = movies
    if episodes:
        batch["episodes"] = episodes
    if shows:
        batch["shows"] = list(shows.values())
    return batch


def _ids_overlap(a: object, b: object) -> bool:
    if not isinstance(a, Mapping) or not isinstance(b, Mapping):
        return False
    return any(k in b and b[k] == v and v is not None for k, v in a.items())


def matches(body: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
    """Whether a `GET /sync/history` entry is the item of a scrobble body."""
    if "movie" in body:
        movie = entry.get("movie")
        return isinstance(movie, Mapping) and _ids_overlap(
            body["movie"].get("ids"), movie.get("ids")
        )
    episode = body.get("episode") or {}
    have = entry.get("episode")
    if not isinstance(have, Mapping):
        return False
    if "ids" in episode:
        return _ids_overlap(episode["ids"], have.get("ids"))
    show = entry.get("show")
    if not isinstance(show, Mapping) or not _ids_overlap(body["show"].get("ids"), show.get("ids")):
        return False
    if "number_abs" in episode:
        return bool(have.get("number_abs") == episode["number_abs"])
    return bool(
        have.get("season") == episode.get("season") and have.get("number") == episode.get("number")
    )


def already_recorded(
    watches: Sequence[tuple[int, Mapping[str, Any], float]],
    history: Iterable[Mapping[str, Any]],
    slack: float,
) -> set[int]:
    """Which (row id, scrobble body, ended at) watches Trakt's history already holds.

    An entry accounts for one watch only: the one it is closest after (a scrobble is dated
    when Trakt got it, a history entry at the time we sent), so two watches of the same
    item are never both taken for one entry.
    """
    entries = [
        (when, entry)
        for entry in history
        if (when := parse_iso(entry.get("watched_at"))) is not None
    ]
    used: set[int] = set()
    found: set[int] = set()
    for row_id, body, ended in sorted(watches, key=lambda w: w[2]):
        for index, (when, entry) in sorted(enumerate(entries), key=lambda e: e[1][0]):
            if index in used or when < ended - slack or not matches(body, entry):
                continue
            used.add(index)
            found.add(row_id)
            break
    return found


def not_found(entries: Sequence[tuple[int, Mapping[str, Any]]], answer: object) -> set[int]:
    """Row ids whose items Trakt listed under `not_found` in its answer to a batch."""
    if not isinstance(answer, Mapping):
        return set()
    missing = answer.get("not_found")
    if not isinstance(missing, Mapping):
        return set()
    out: set[int] = set()
    for row_id, body in entries:
        if "movie" in body:
            pool, ids = missing.get("movies"), body["movie"].get("ids")
        elif "ids" in (body.get("episode") or {}):
            pool, ids = missing.get("episodes"), body["episode"]["ids"]
        else:
            pool, ids = missing.get("shows"), body["show"].get("ids")
        if isinstance(pool, list) and any(
            isinstance(p, Mapping) and _ids_overlap(ids, p.get("ids")) for p in pool
        ):
            out.add(row_id)
    return out
