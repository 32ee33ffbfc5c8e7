"""Late watches as /sync/history batches, and recognising what Trakt's history already holds."""

from __future__ import annotations

from typing import Any

from trakt_scrobbled.history import (
    already_recorded,
    build_batch,
    can_go_to_history,
    iso,
    not_found,
    parse_iso,
)

MOVIE = {"movie": {"ids": {"trakt": 1, "imdb": "tt1"}, "title": "M", "year": 2000}, "progress": 99}
EP_IDS = {"episode": {"ids": {"tvdb": 555}}, "progress": 95}
EP_NUM = {"show": {"ids": {"tvdb": 81189}}, "episode": {"season": 1, "number": 2}, "progress": 90}
EP_NUM2 = {"show": {"ids": {"tvdb": 81189}}, "episode": {"season": 1, "number": 3}, "progress": 90}
EP_ABS = {"show": {"ids": {"tvdb": 9}}, "episode": {"number_abs": 1042}, "progress": 90}


def test_iso_is_trakt_format_and_round_trips() -> None:
    assert iso(1_700_000_000.25) == "2023-11-14T22:13:20.250Z"
    assert parse_iso(iso(1_700_000_000.25)) == 1_700_000_000.25
    assert parse_iso("nonsense") is None


def test_batch_groups_items_by_kind_and_merges_seasons() -> None:
    batch = build_batch([(MOVIE, 100.0), (EP_IDS, 200.0), (EP_NUM, 300.0), (EP_NUM2, 400.0)])
    assert batch["movies"] == [
        {"ids": {"trakt": 1, "imdb": "tt1"}, "title": "M", "year": 2000, "watched_at": iso(100)}
    ]
    assert batch["episodes"] == [{"ids": {"tvdb": 555}, "watched_at": iso(200)}]
    assert batch["shows"] == [
        {
            "ids": {"tvdb": 81189},
            "seasons": [
                {
                    "number": 1,
                    "episodes": [
                        {"number": 2, "watched_at": iso(300)},
                        {"number": 3, "watched_at": iso(400)},
                    ],
                }
            ],
        }
    ]


def test_absolute_numbering_cannot_go_to_history() -> None:
    assert not can_go_to_history(EP_ABS)
    assert can_go_to_history(MOVIE) and can_go_to_history(EP_NUM) and can_go_to_history(EP_IDS)


def entry(item: dict[str, Any], at: float) -> dict[str, Any]:
    return {"id": 1, "watched_at": iso(at), "action": "scrobble", **item}


def test_already_recorded_matches_item_and_time() -> None:
    history = [
        entry({"type": "movie", "movie": {"ids": {"trakt": 1, "imdb": "tt1"}}}, 1000),
        entry(
            {
                "type": "episode",
                "episode": {"season": 1, "number": 2, "ids": {"tvdb": 999}},
                "show": {"ids": {"tvdb": 81189}},
            },
            1000,
        ),
    ]
    assert already_recorded([(1, MOVIE, 990)], history, 5) == {1}
    assert already_recorded([(1, MOVIE, 1010)], history, 5) == set()  # an older watch
    assert already_recorded([(1, EP_NUM, 990)], history, 5) == {1}
    assert already_recorded([(1, EP_NUM2, 990), (2, EP_IDS, 990)], history, 5) == set()


def test_one_entry_accounts_for_one_watch_only() -> None:
    history = [entry({"type": "movie", "movie": {"ids": {"trakt": 1}}}, 1000)]
    assert already_recorded([(1, MOVIE, 990), (2, MOVIE, 995)], history, 60) == {1}


def test_not_found_maps_back_to_rows() -> None:
    answer = {
        "added": {"movies": 0, "episodes": 1},
        "not_found": {"movies": [{"ids": {"imdb": "tt1"}}], "shows": [], "episodes": []},
    }
    assert not_found([(1, MOVIE), (2, EP_IDS)], answer) == {1}
    assert not_found([(1, MOVIE)], "garbage") == set()
