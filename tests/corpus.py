"""The recognition corpus (tests/recognition_corpus.tsv) and how an answer is scored against it.

An answer is right when its type matches and, for a movie, the title and year; for an episode,
the show's title, the year when the name has one, and the numbers: season + every episode
number, or the absolute number, or the air date. A file that must not be scrobbled is right
when it is `unknown` with a reason. Titles are compared as Trakt's search would see them: without
case, accents, punctuation or spaces.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).with_name("recognition_corpus.tsv")


@dataclass(frozen=True, slots=True)
class Case:
    cls: str
    path: str
    want: dict[str, Any]


def _int(text: str) -> int | None:
    return int(text) if text else None


def cases(path: Path = CORPUS) -> Iterator[Case]:
    with path.open(encoding="utf-8", newline="") as fh:
        for rec in csv.DictReader(fh, delimiter="\t"):
            episodes = [int(e) for e in rec["episodes"].split(",") if e]
            yield Case(
                rec["cls"],
                rec["path"],
                {
                    "type": rec["type"],
                    "title": rec["title"] or None,
                    "year": _int(rec["year"]),
                    "season": _int(rec["season"]),
                    "episodes": episodes or None,
                    "absolute": _int(rec["absolute"]),
                    "date": rec["date"] or None,
                },
            )


def title_key(title: object) -> str:
    if not isinstance(title, str):
        return ""
    decomposed = unicodedata.normalize("NFKD", title.replace("&", " and "))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return "".join(c for c in plain if c.isalnum())


def mismatch(want: Mapping[str, Any], got: Mapping[str, Any]) -> str | None:
    """None when `got` (an `identify --json` object) is right, else what is wrong."""
    if got.get("type") != want["type"]:
        return f"type {got.get('type')} ({got.get('reason')})"
    if want["type"] == "unknown":
        return None if got.get("reason") else "no reason"
    if title_key(got.get("title")) != title_key(want["title"]):
        return f"title {got.get('title')!r}"
    if want["year"] is not None and got.get("year") != want["year"]:
        return f"year {got.get('year')}"
    if want["type"] == "movie":
        return None
    if want["date"] is not None:
        return None if got.get("date") == want["date"] else f"date {got.get('date')}"
    if want["absolute"] is not None:
        if got.get("absolute") == want["absolute"] and got.get("season") is None:
            return None
        return f"absolute {got.get('absolute')} season {got.get('season')} ep {got.get('episode')}"
    episodes = got.get("episodes") or ([got["episode"]] if got.get("episode") else None)
    if got.get("season") != want["season"] or episodes != want["episodes"]:
        return f"S{got.get('season')} E{episodes}"
    return None


def score(
    parse: Callable[[str], Mapping[str, Any]], only: str | None = None
) -> tuple[dict[str, list[int]], list[tuple[Case, str]]]:
    """({class: [right, total]}, the wrong ones with what is wrong)."""
    per: dict[str, list[int]] = {}
    wrong: list[tuple[Case, str]] = []
    for case in cases():
        if only is not None and case.cls != only:
            continue
        tally = per.setdefault(case.cls, [0, 0])
        tally[1] += 1
        problem = mismatch(case.want, parse(case.path))
        if problem is None:
            tally[0] += 1
        else:
            wrong.append((case, problem))
    return per, wrong
