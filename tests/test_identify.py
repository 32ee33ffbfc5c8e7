"""Identification: file names parsed offline, then ids, overrides and Trakt search (real HTTP)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fake_trakt import Episode, FakeTrakt
from trakt_scrobbled.events import Ids, MediaInfo, MediaType, TraktItem
from trakt_scrobbled.identify import (
    Guess,
    Identification,
    Identifier,
    Override,
    identify_paths,
    parse_any,
    parse_path,
)
from trakt_scrobbled.store import open_db
from trakt_scrobbled.trakt.client import TraktClient
from trakt_scrobbled.trakt.ratelimit import PostRateLimiter

NULLS: dict[str, Any] = {
    "type": "unknown",
    "title": None,
    "year": None,
    "season": None,
    "episode": None,
    "episodes": None,
    "absolute": None,
    "date": None,
    "reason": None,
    "ids": None,
}


def movie(title: str, year: int | None = None, **more: Any) -> dict[str, Any]:
    return {"type": "movie", "title": title, "year": year, **more}


def episode(title: str, season: int, *numbers: int, **more: Any) -> dict[str, Any]:
    return {
        "type": "episode",
        "title": title,
        "season": season,
        "episode": numbers[0],
        "episodes": list(numbers),
        **more,
    }


def unknown(reason: str, **more: Any) -> dict[str, Any]:
    return {"type": "unknown", "reason": reason, **more}


PATHS: list[tuple[str, dict[str, Any]]] = [
    # movies
    ("The.Matrix.1999.1080p.BluRay.x264-GROUP.mkv", movie("The Matrix", 1999)),
    ("/movies/The Matrix (1999)/movie.mkv", movie("The Matrix", 1999)),
    ("Blade.Runner.2049.2017.2160p.mkv", movie("Blade Runner 2049", 2017)),
    ("2001.A.Space.Odyssey.1968.mkv", movie("2001 A Space Odyssey", 1968)),
    ("Amélie.2001.mkv", movie("Amélie", 2001)),
    ("/home/user/Downloads/Some.Movie.2010.mkv", movie("Some Movie", 2010)),
    (
        "/movies/Heat (1995) {imdb-tt0113277}/Heat (1995).mkv",
        movie("Heat", 1995, ids={"imdb": "tt0113277"}),
    ),
    ("/movies/Heat (1995) [tmdbid-949]/Heat.mkv", movie("Heat", 1995, ids={"tmdb": 949})),
    ("/movies/The Matrix (1999)/VIDEO_TS/VIDEO_TS.IFO", movie("The Matrix", 1999)),
    (
        "file:///movies/Heat%20(1995)/Heat.mkv",
        movie("Heat", 1995, path="/movies/Heat (1995)/Heat.mkv"),
    ),
    # episodes
    ("Breaking.Bad.S05E14.720p.HDTV.x264.mkv", episode("Breaking Bad", 5, 14)),
    ("Breaking Bad 5x14 Ozymandias.avi", episode("Breaking Bad", 5, 14)),
    ("/tv/Show Name/Season 1/02 - Title.mkv", episode("Show Name", 1, 2)),
    ("/tv/Show Name/Season 2/Episode 5.mkv", episode("Show Name", 2, 5)),
    ("/tv/Show Name/S02/05.mkv", episode("Show Name", 2, 5)),
    (
        "/tv/Doctor Who (2005)/Season 1/Doctor Who (2005) - S01E01 - Rose.mkv",
        episode("Doctor Who", 1, 1, year=2005),
    ),
    ("/tv/Show/Specials/Show - S00E01.mkv", episode("Show", 0, 1)),
    ("Show.Name.S2024E05.mkv", episode("Show Name", 2024, 5)),  # a year as season: no show year
    (
        "/tv/Breaking Bad (2008) [tvdbid-81189]/Season 05/Breaking Bad S05E14.mkv",
        episode("Breaking Bad", 5, 14, year=2008, ids={"tvdb": 81189}),
    ),
    ("/tv/Extras/Season 1/Extras.S01E01.mkv", episode("Extras", 1, 1)),  # the show, not extras
    ("Trailer.Park.Boys.S01E01.mkv", episode("Trailer Park Boys", 1, 1)),
    # multi-episode files
    ("Show.Name.S01E02E03.720p.mkv", episode("Show Name", 1, 2, 3)),
    ("Show.Name.S01E01-E03.mkv", episode("Show Name", 1, 1, 2, 3)),
    ("The.Simpsons.S01E01.E02.mkv", episode("The Simpsons", 1, 1, 2)),
    # anime, absolute numbering
    (
        "[Group] Anime Name - 1042 [1080p].mkv",
        {"type": "episode", "title": "Anime Name", "absolute": 1042},
    ),
    (
        "[SubsPlease] One Piece - 1071 (1080p) [ABCD1234].mkv",
        {"type": "episode", "title": "One Piece", "absolute": 1071},
    ),
    # daily shows
    (
        "The.Daily.Show.2024.03.14.mkv",
        {"type": "episode", "title": "The Daily Show", "date": "2024-03-14"},
    ),
    (
        "The.Daily.Show.2024-03-14.Guest.720p.mkv",
        {"type": "episode", "title": "The Daily Show", "date": "2024-03-14"},
    ),
    # never scrobbled
    ("Inception.2010.Trailer.mkv", unknown("trailer", title="Inception", year=2010)),
    ("Inception.2010-trailer.mkv", unknown("trailer", title="Inception", year=2010)),
    ("sample.mkv", unknown("sample")),
    ("Inception.2010-sample.mkv", unknown("sample", title="Inception", year=2010)),
    (
        "/movies/Inception (2010)/Sample/inception-sample.mkv",
        unknown("sample", title="Inception", year=2010),
    ),
    ("Show.Name.S01E02.Sample.mkv", unknown("sample", title="Show Name")),
    (
        "/movies/Inception (2010)/Featurettes/Making of.mkv",
        unknown("extra", title="Inception", year=2010),
    ),
    (
        "/movies/Inception (2010)/Extras/Deleted Scene.mkv",
        unknown("extra", title="Inception", year=2010),
    ),
    (
        "/movies/Inception (2010)/Behind The Scenes/clip.mkv",
        unknown("extra", title="Inception", year=2010),
    ),
    ("Inception.2010-behindthescenes.mkv", unknown("extra", title="Inception", year=2010)),
    # not enough to go on
    ("1080p.x264.mkv", unknown("no title")),
    ("[ABCD1234].mkv", unknown("no title")),
    ("/downloads/movie.mkv", unknown("no title")),
    ("Show.Name.S01.mkv", unknown("no episode number", title="Show Name", season=1)),
    ("Inception.2010.srt", unknown("not a video")),
    ("/music/Artist - Song.mp3", unknown("not a video")),
    (
        "https://www.youtube.com/watch?v=abc",
        unknown("not a video", path="https://www.youtube.com/watch"),
    ),
    (
        "https://plex.local:32400/library/parts/1/file.mkv?X-Plex-Token=SECRET",
        unknown("no title", path="https://plex.local:32400/library/parts/1/file.mkv"),
    ),
]


@pytest.mark.parametrize(("path", "expected"), PATHS, ids=[p for p, _ in PATHS])
def test_parse_path(path: str, expected: dict[str, Any]) -> None:
    assert parse_path(path).to_json() == {**NULLS, "path": path, **expected}


def test_guess_is_a_frozen_value_with_the_contract_fields() -> None:
    guess = parse_path("Show.Name.S01E02E03.mkv")
    assert isinstance(guess, Guess)
    assert guess.episodes == (2, 3)
    with pytest.raises(AttributeError):
        guess.title = "other"  # type: ignore[misc]
    assert set(guess.to_json()) == {"path", *NULLS}
    assert not hasattr(guess, "__dict__")


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=80))
def test_parse_path_never_fails_and_is_json(name: str) -> None:
    out = parse_path(name + ".mkv").to_json()
    json.dumps(out)
    assert out["type"] in ("movie", "episode", "unknown")
    assert (out["type"] == "unknown") == (out["reason"] is not None)


# ------------------------------------------------------------------------------- Identifier

LONG = 5400.0
"""A feature's duration, seconds."""


class ManualClock:
    """Wall time moves only when a test says so (cache expiry)."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@pytest.fixture
def fake() -> Iterator[FakeTrakt]:
    with FakeTrakt() as f:
        yield f


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def conn(db: Path) -> Iterator[sqlite3.Connection]:
    c = open_db(db)
    yield c
    c.close()


@pytest.fixture
async def client(fake: FakeTrakt, clock: ManualClock) -> AsyncIterator[TraktClient]:
    limiter = PostRateLimiter(clock)
    async with TraktClient(fake.url, fake.config.client_id, limiter, timeout=5.0) as c:
        yield c


@pytest.fixture
def identifier(client: TraktClient, conn: sqlite3.Connection, clock: ManualClock) -> Identifier:
    return Identifier(client, conn, clock)


def searches(fake: FakeTrakt) -> list[tuple[str, dict[str, str]]]:
    return [(r.path, r.query) for r in fake.requests("/search")]


def cache_rows(conn: sqlite3.Connection) -> list[tuple[str, str | None]]:
    """The search answers cached (readings of names are cached too, under `parse|`)."""
    return list(
        conn.execute(
            "SELECT key, value FROM identify_cache WHERE key NOT LIKE 'parse|%' ORDER BY key"
        )
    )


async def test_movie_found_by_search_with_year(fake: FakeTrakt, identifier: Identifier) -> None:
    fake.add_movie("The Matrix Reloaded", 2003)
    fake.add_movie("The Matrix", 2031)  # a namesake from another year
    matrix = fake.add_movie("The Matrix", 1999, imdb="tt0133093", tmdb=603)

    found = await identifier.identify(
        MediaInfo(path="/movies/The Matrix (1999)/movie.mkv", duration=LONG)
    )

    assert found.item == TraktItem(MediaType.MOVIE, matrix.ids, title="The Matrix", year=1999)
    assert found.reason is None and not found.retry_later
    assert searches(fake) == [("/search/movie", {"query": "The Matrix", "years": "1998-2000"})]
    out = found.to_json()
    assert (out["type"], out["title"], out["year"]) == ("movie", "The Matrix", 1999)
    assert out["ids"] == matrix.ids.to_json()


async def test_show_and_episode_numbers(fake: FakeTrakt, identifier: Identifier) -> None:
    fake.add_show("Breaking Bad Movie Special", 2020)
    show = fake.add_show("Breaking Bad", 2008, tvdb=81189, episodes=[Episode(5, 14)])

    found = await identifier.identify(MediaInfo(path="/tv/Breaking.Bad.S05E14.720p.HDTV.mkv"))

    assert found.item is not None
    assert found.item.to_json() == {
        "show": {"ids": show.ids.to_json(), "title": "Breaking Bad"},
        "episode": {"season": 5, "number": 14},
    }
    assert searches(fake) == [("/search/show", {"query": "Breaking Bad"})]
    out = found.to_json()
    assert (out["type"], out["season"], out["episode"]) == ("episode", 5, 14)


async def test_multi_episode_file_scrobbles_its_first_episode(
    fake: FakeTrakt, identifier: Identifier
) -> None:
    show = fake.add_show("Show Name", 2010, episodes=[Episode(1, 2), Episode(1, 3)])
    found = await identifier.identify(MediaInfo(path="Show.Name.S01E02E03.720p.mkv"))
    assert found.item is not None
    assert (found.item.show_ids, found.item.season, found.item.number) == (show.ids, 1, 2)
    assert found.guess is not None and found.guess.episodes == (2, 3)
    assert found.episodes == (2, 3)
    assert found.to_json()["episodes"] == [2, 3]


async def test_anime_absolute_number(fake: FakeTrakt, identifier: Identifier) -> None:
    show = fake.add_show("One Piece", 1999, episodes=[Episode(21, 1071, number_abs=1071)])
    found = await identifier.identify(
        MediaInfo(path="[SubsPlease] One Piece - 1071 (1080p) [ABCD1234].mkv")
    )
    assert found.item is not None
    assert found.item.to_json() == {
        "show": {"ids": show.ids.to_json(), "title": "One Piece"},
        "episode": {"number_abs": 1071},
    }


async def test_player_metadata_without_ids_is_searched(
    fake: FakeTrakt, identifier: Identifier
) -> None:
    show = fake.add_show("Breaking Bad", 2008, episodes=[Episode(5, 14)])
    plex = MediaInfo(
        title="Ozymandias",  # the episode's title: never searched
        year=2013,  # the episode's air year: not the show's
        media_type=MediaType.EPISODE,
        show_title="Breaking Bad",
        season=5,
        episode=14,
        duration=2820.0,
    )
    found = await identifier.identify(plex)
    assert found.item is not None
    assert (found.item.show_ids, found.item.season, found.item.number) == (show.ids, 5, 14)
    assert searches(fake) == [("/search/show", {"query": "Breaking Bad"})]


PLAYER_IDS = [
    pytest.param(
        MediaInfo(media_type=MediaType.MOVIE, title="Heat", ids=Ids(imdb="tt0113277")),
        {"movie": {"ids": {"imdb": "tt0113277"}, "title": "Heat"}},
        id="movie ids",
    ),
    pytest.param(
        MediaInfo(
            media_type=MediaType.EPISODE,
            ids=Ids(tvdb=4639461),
            show_ids=Ids(tvdb=81189),
            season=5,
            episode=14,
        ),
        {"episode": {"ids": {"tvdb": 4639461}}},
        id="episode ids before show ids",
    ),
    pytest.param(
        MediaInfo(media_type=MediaType.EPISODE, show_ids=Ids(tvdb=81189), season=5, episode=14),
        {"show": {"ids": {"tvdb": 81189}}, "episode": {"season": 5, "number": 14}},
        id="show ids and numbers",
    ),
    pytest.param(
        MediaInfo(
            path="/anime/[Group] One Piece - 1071 [1080p].mkv",
            media_type=MediaType.EPISODE,
            show_ids=Ids(tvdb=81797),
        ),
        {"show": {"ids": {"tvdb": 81797}}, "episode": {"number_abs": 1071}},
        id="show ids and the path's absolute number",
    ),
    pytest.param(
        MediaInfo(path="/movies/Heat (1995) {imdb-tt0113277}/Heat (1995).mkv"),
        {"movie": {"ids": {"imdb": "tt0113277"}, "title": "Heat", "year": 1995}},
        id="ids in the path",
    ),
]


@pytest.mark.parametrize(("media", "body"), PLAYER_IDS)
async def test_player_ids_need_no_search(
    fake: FakeTrakt, identifier: Identifier, media: MediaInfo, body: dict[str, Any]
) -> None:
    found = await identifier.identify(media)
    assert found.item is not None
    assert found.item.to_json() == body
    assert fake.requests() == []


async def test_override_wins_over_player_ids_and_search(
    fake: FakeTrakt, client: TraktClient, conn: sqlite3.Connection, clock: ManualClock
) -> None:
    fake.add_movie("Heat", 1995, imdb="tt0113277")
    overrides = [
        Override("*/Heat (1995)/*", MediaType.MOVIE, Ids(tmdb=949)),
        Override("/tv/Anime/*", MediaType.EPISODE, Ids(trakt=5)),
    ]
    identifier = Identifier(client, conn, clock, overrides=overrides)

    movie = await identifier.identify(
        MediaInfo(
            path="/movies/Heat (1995)/Heat.mkv",
            media_type=MediaType.MOVIE,
            ids=Ids(imdb="tt0000001"),
        )
    )
    show = await identifier.identify(MediaInfo(path="/tv/Anime/Season 2/Whatever - S02E03.mkv"))

    assert movie.item == TraktItem(MediaType.MOVIE, Ids(tmdb=949))
    assert show.item is not None
    assert show.item.to_json() == {
        "show": {"ids": {"trakt": 5}},
        "episode": {"season": 2, "number": 3},
    }
    assert fake.requests() == []


async def test_cache_hit_makes_no_second_request(
    fake: FakeTrakt, client: TraktClient, db: Path, clock: ManualClock
) -> None:
    eps = [Episode(1, 1), Episode(1, 2), Episode(2, 1)]
    show = fake.add_show("Show Name", 2010, episodes=eps)
    conn = open_db(db)
    try:
        first = Identifier(client, conn, clock)
        e1 = await first.identify(MediaInfo(path="/tv/Show.Name.S01E01.mkv"))
        e2 = await first.identify(MediaInfo(path="/tv/Show Name/Season 1/Show.Name.S01E02.mkv"))
    finally:
        conn.close()
    # A restart: a new connection to the same file still knows the answer.
    conn = open_db(db)
    try:
        e3 = await Identifier(client, conn, clock).identify(MediaInfo(path="Show.Name.S02E01.mkv"))
    finally:
        conn.close()

    assert [(e.item.show_ids, e.item.season, e.item.number) for e in (e1, e2, e3) if e.item] == [
        (show.ids, 1, 1),
        (show.ids, 1, 2),
        (show.ids, 2, 1),
    ]
    assert searches(fake) == [("/search/show", {"query": "Show Name"})]


class CountingParser:
    """The real parsing, counted: a file seen before must cost no parse."""

    def __init__(self) -> None:
        self.calls = 0

    async def parse(self, path: str, *, check_extension: bool) -> Guess:
        self.calls += 1
        return parse_any(path, check_extension=check_extension)


async def test_a_file_seen_before_costs_no_parse(
    fake: FakeTrakt, client: TraktClient, db: Path, clock: ManualClock
) -> None:
    fake.add_movie("The Matrix", 1999)
    parser = CountingParser()
    media = MediaInfo(path="/movies/The.Matrix.1999.mkv", duration=LONG)
    conn = open_db(db)
    try:
        first = await Identifier(client, conn, clock, parser=parser).identify(media)
        again = await Identifier(client, conn, clock, parser=parser).identify(media)
    finally:
        conn.close()
    assert first.item is not None and again.item == first.item
    assert parser.calls == 1


async def test_an_episode_trakt_does_not_have_is_not_invented(
    fake: FakeTrakt, identifier: Identifier
) -> None:
    fake.add_show("Show Name", 2010, episodes=[Episode(1, 1)])
    fake.add_show("Anime Name", 2015, episodes=[Episode(1, n, number_abs=n) for n in (1, 2)])
    fake.add_show("Other Anime", 2016, episodes=[Episode(1, n) for n in (1, 2, 3)])

    found = await identifier.identify(MediaInfo(path="Show.Name.S07E21.mkv"))
    beyond = await identifier.identify(MediaInfo(path="[Group] Anime Name - 205 [1080p].mkv"))
    known = await identifier.identify(MediaInfo(path="[Group] Anime Name - 02 [1080p].mkv"))
    by_position = await identifier.identify(MediaInfo(path="[Group] Other Anime - 03 [720p].mkv"))
    past_the_end = await identifier.identify(MediaInfo(path="[Group] Other Anime - 04.mkv"))

    assert found.item is None
    assert found.reason == "no S07E21 of Show Name on Trakt"
    assert found.to_json()["type"] == "unknown"
    assert (
        beyond.item is None and beyond.reason == "no episode 205 (absolute) of Anime Name on Trakt"
    )
    assert known.item is not None and known.item.number_abs == 2
    assert by_position.item is not None and by_position.item.number_abs == 3
    assert past_the_end.item is None


async def test_cached_miss_until_it_expires(
    fake: FakeTrakt, client: TraktClient, conn: sqlite3.Connection, clock: ManualClock
) -> None:
    identifier = Identifier(client, conn, clock, miss_ttl=3600.0)
    media = MediaInfo(path="Obscure.Film.2011.1080p.mkv", duration=LONG)

    miss = await identifier.identify(media)
    asked = len(searches(fake))
    again = await identifier.identify(media)

    assert (miss.item, miss.reason, miss.retry_later) == (None, "not found on Trakt", False)
    assert again.reason == "not found on Trakt"
    assert asked >= 1 and len(searches(fake)) == asked  # the miss was remembered
    assert cache_rows(conn) == [("movie|obscurefilm|2011", None)]
    assert again.to_json()["type"] == "unknown"
    assert again.to_json()["title"] == "Obscure Film"

    film = fake.add_movie("Obscure Film", 2011)
    clock.now += 3601.0
    later = await identifier.identify(media)
    assert later.item is not None and later.item.ids == film.ids
    assert len(searches(fake)) == asked + 1


async def test_year_off_by_one_is_found_within_the_year_range(
    fake: FakeTrakt, identifier: Identifier
) -> None:
    heat = fake.add_movie("Heat", 1995)
    fake.add_movie("Heatwave", 1996)  # a year filter hit that is not our title

    off_by_one = await identifier.identify(MediaInfo(path="Heat.1994.mkv"))
    other_decade = await identifier.identify(MediaInfo(path="Heat.1986.mkv"))

    assert off_by_one.item is not None and off_by_one.item.ids == heat.ids
    assert other_decade.item is None and other_decade.reason == "not found on Trakt"
    assert searches(fake) == [
        ("/search/movie", {"query": "Heat", "years": "1993-1995"}),
        ("/search/movie", {"query": "Heat", "years": "1985-1987"}),
    ]


@pytest.mark.parametrize("fault", ["outage", "503", "429"])
async def test_trakt_down_retries_later_and_caches_nothing(
    fake: FakeTrakt, identifier: Identifier, conn: sqlite3.Connection, fault: str
) -> None:
    movie = fake.add_movie("The Matrix", 1999)
    if fault == "outage":
        fake.set_outage(True)
    else:
        fake.fail_next(1, int(fault), path_prefix="/search", retry_after=30.0)
    media = MediaInfo(path="The.Matrix.1999.mkv", duration=LONG)

    down = await identifier.identify(media)

    assert (down.item, down.reason, down.retry_later) == (None, "Trakt unreachable", True)
    assert cache_rows(conn) == []
    fake.set_outage(False)
    back = await identifier.identify(media)
    assert back.item is not None and back.item.ids == movie.ids


async def test_wrong_client_id_keeps_the_play_for_later(
    fake: FakeTrakt, conn: sqlite3.Connection, clock: ManualClock
) -> None:
    fake.add_movie("The Matrix", 1999)
    async with TraktClient(fake.url, "not-the-client-id", PostRateLimiter(clock)) as client:
        found = await Identifier(client, conn, clock).identify(
            MediaInfo(path="The.Matrix.1999.mkv")
        )
    assert found.item is None and found.retry_later
    assert found.reason is not None and "client id" in found.reason
    assert "not-the-client-id" not in found.reason
    assert cache_rows(conn) == []


@pytest.mark.parametrize(
    ("media", "reason"),
    [
        (MediaInfo(path="The.Matrix.1999.mkv", duration=95.0), "too short"),
        (MediaInfo(path="The.Matrix.1999.Trailer.mkv", duration=LONG), "trailer"),
        (MediaInfo(path="/m/The Matrix (1999)/Featurettes/Bullet time.mkv"), "extra"),
        (
            MediaInfo(
                path="The.Matrix.1999-sample.mkv", media_type=MediaType.MOVIE, ids=Ids(trakt=1)
            ),
            "sample",
        ),
        (MediaInfo(path="/music/Artist - Song.flac"), "not a video"),
        (MediaInfo(path="1080p.x264.mkv"), "no title"),
    ],
)
async def test_never_identified(
    fake: FakeTrakt, identifier: Identifier, media: MediaInfo, reason: str
) -> None:
    fake.add_movie("The Matrix", 1999)
    found = await identifier.identify(media)
    assert (found.item, found.reason, found.retry_later) == (None, reason, False)
    assert fake.requests() == []


async def test_daily_show_is_found_but_not_its_episode(
    fake: FakeTrakt, identifier: Identifier
) -> None:
    show = fake.add_show("The Daily Show", 1996)
    found = await identifier.identify(MediaInfo(path="The.Daily.Show.2024.03.14.mkv"))
    assert (found.item, found.reason) == (None, "daily shows not supported yet")
    out = found.to_json()
    assert (out["date"], out["ids"]) == ("2024-03-14", show.ids.to_json())


async def test_offline_identifies_only_from_ids(
    conn: sqlite3.Connection, clock: ManualClock
) -> None:
    identifier = Identifier(None, conn, clock)
    searched = await identifier.identify(MediaInfo(path="The.Matrix.1999.mkv"))
    with_ids = await identifier.identify(
        MediaInfo(media_type=MediaType.MOVIE, ids=Ids(imdb="tt0133093"))
    )
    assert searched.item is None and not searched.retry_later
    assert searched.guess is not None and searched.guess.title == "The Matrix"
    assert with_ids.item == TraktItem(MediaType.MOVIE, Ids(imdb="tt0133093"))


def _files(folder: Path, *names: str) -> list[str]:
    folder.mkdir()
    for name in names:
        (folder / name).touch()
    return [str(folder / name) for name in names]


async def test_identify_paths_offline_and_online(
    fake: FakeTrakt, identifier: Identifier, tmp_path: Path
) -> None:
    movie = fake.add_movie("The Matrix", 1999)
    paths = _files(tmp_path / "movies", "The.Matrix.1999.mkv", "sample.mkv")

    offline = await identify_paths(paths, None)
    online = await identify_paths(paths, identifier)

    assert [o["type"] for o in offline] == ["movie", "unknown"]
    assert offline[0]["ids"] is None
    assert online[0] == {
        **NULLS,
        "path": paths[0],
        "type": "movie",
        "title": "The Matrix",
        "year": 1999,
        "ids": movie.ids.to_json(),
    }
    assert online[1]["reason"] == "sample"
    json.dumps(online)


async def test_identify_paths_says_directories_and_missing_files(
    identifier: Identifier, tmp_path: Path
) -> None:
    missing = str(tmp_path / "The.Matrix.1999.mkv")
    online = await identify_paths([str(tmp_path), missing], identifier)
    offline = await identify_paths([str(tmp_path), missing], None, offline=True)
    assert [o["reason"] for o in online] == ["a directory, not a file", "no such file"]
    assert [o["type"] for o in offline] == ["unknown", "movie"]  # names need not exist offline


def test_identification_without_item_says_why() -> None:
    out = Identification(None, parse_path("The.Matrix.1999.mkv"), "Trakt unreachable", True)
    assert out.to_json()["type"] == "unknown"
    assert out.to_json()["reason"] == "Trakt unreachable"


def test_override_needs_a_type_and_ids() -> None:
    with pytest.raises(ValueError, match="movie or a show"):
        Override("*", MediaType.UNKNOWN, Ids(trakt=1))
    with pytest.raises(ValueError, match="ids"):
        Override("*", MediaType.MOVIE, Ids())
