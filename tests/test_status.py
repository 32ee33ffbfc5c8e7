"""`trakt-scrobbled status`: the rendering by tables, then the command against a real daemon."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import Daemon, Home, log_in, run_cli
from tests.fake_trakt import FakeTrakt
from tests.realplayers import MediaFiles, MpvLauncher
from trakt_scrobbled.status_view import EXIT_NOT_RUNNING, duration, render_status

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC).timestamp()


def at(minutes_ago: float) -> str:
    """The daemon's time format, `minutes_ago` before NOW."""
    stamp = datetime.fromtimestamp(NOW - minutes_ago * 60, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.000Z")


BASE: dict[str, Any] = {
    "version": "0.1.0",
    "pid": 4242,
    "uptime": 7380.0,
    "auth": {"state": "logged in", "expires_at": at(-6 * 24 * 60), "login": None},
    "players": [],
    "playing": [],
    "ignored": [],
    "queue": {"pending": 0, "failed": 0, "oldest_pending_at": None, "oldest_pending_age": None},
    "sender": {"state": "idle", "last_error": None},
    "recent": [],
    "config": {"file": "/home/u/.config/trakt-scrobbled/config.toml", "problems": []},
    "server": {"error": None},
}

MOVIE_PLAYING = {
    "source": "mpv:/run/mpv1.sock",
    "state": "playing",
    "label": "The Matrix (1999)",
    "progress": 42.4,
    "item": {
        "movie": {"ids": {"trakt": 481, "imdb": "tt0133093"}, "title": "The Matrix", "year": 1999},
        "label": "The Matrix (1999)",
    },
    "reason": None,
}

# (what differs from BASE, lines that must appear in the output)
TABLE: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "idle, logged in",
        {},
        [
            "trakt-scrobbled 0.1.0 · pid 4242 · up 2 h 03 min",
            "Trakt:    logged in, token valid until 2025-06-07 12:00 (in 6 d 0 h)",
            "Players:  none watched (enable [mpv], [kodi] or [plex] in the config)",
            "Playing:  nothing",
            "Queue:    0 pending, 0 failed",
            "Sender:   idle",
            "Recent:   no scrobble yet",
        ],
    ),
    (
        "login code shown",
        {
            "auth": {
                "state": "login needed",
                "expires_at": None,
                "login": {
                    "user_code": "ABCD1234",
                    "verification_url": "https://trakt.tv/activate",
                    "url": "https://trakt.tv/activate/ABCD1234",
                },
            }
        },
        [
            "Trakt:    login needed: open https://trakt.tv/activate and enter the code ABCD1234",
            "          (or open https://trakt.tv/activate/ABCD1234)",
        ],
    ),
    (
        "login needed, no code yet",
        {"auth": {"state": "login needed", "expires_at": None, "login": None}},
        ["Trakt:    login needed: run `trakt-scrobbled login`"],
    ),
    (
        "token expired",
        {"auth": {"state": "logged in", "expires_at": at(120), "login": None}},
        [
            "Trakt:    logged in, token expired 2025-06-01 10:00 (2 h 00 min ago); it is "
            "refreshed at the next send, else run `trakt-scrobbled login`"
        ],
    ),
    (
        "players, connections and ignored counts",
        {
            "players": [
                {
                    "name": "mpv",
                    "connected": [{"source": "mpv:/run/mpv1.sock", "detail": "mpv 0.35.1"}],
                    "ignored": {},
                },
                {"name": "kodi", "connected": [], "ignored": {}},
                {"name": "plex", "connected": [], "ignored": {"other account": 3, "trailer": 1}},
            ]
        },
        [
            "Players:",
            "  mpv: 1 connected",
            "    mpv:/run/mpv1.sock  mpv 0.35.1",
            "  kodi: not connected",
            "  plex: not connected",
            "    ignored: other account ×3, trailer ×1",
        ],
    ),
    (
        "a player adapter that crashed and is restarted",
        {
            "players": [
                {
                    "name": "kodi",
                    "connected": [],
                    "ignored": {},
                    "failing": {"error": "RuntimeError: boom", "crashes": 3},
                }
            ]
        },
        [
            "Players:",
            "  kodi: not connected",
            "    failing: RuntimeError: boom, 3 times in a row; restarting it",
        ],
    ),
    (
        "playing, matched",
        {"playing": [MOVIE_PLAYING]},
        [
            "Playing:",
            "  playing 42%  The Matrix (1999)  (mpv:/run/mpv1.sock)",
            "    Trakt: The Matrix (1999) [trakt 481, imdb tt0133093]",
        ],
    ),
    (
        "paused episode matched by show and numbers",
        {
            "playing": [
                {
                    "source": "kodi:127.0.0.1:9090",
                    "state": "paused",
                    "label": "Show Name S01E02",
                    "progress": 7.0,
                    "item": {
                        "show": {"ids": {"tvdb": 81189}, "title": "Show Name"},
                        "episode": {"season": 1, "number": 2},
                        "label": "Show Name S01E02",
                    },
                    "reason": None,
                }
            ]
        },
        [
            "  paused 7%  Show Name S01E02  (kodi:127.0.0.1:9090)",
            "    Trakt: Show Name S01E02 [tvdb 81189]",
        ],
    ),
    (
        "playing, not identified",
        {
            "playing": [
                {
                    "source": "mpv:/run/mpv2.sock",
                    "state": "playing",
                    "label": "birthday party (phone).mkv",
                    "progress": None,
                    "item": None,
                    "reason": "no title found",
                }
            ]
        },
        [
            "  playing ?%  birthday party (phone).mkv  (mpv:/run/mpv2.sock)",
            "    not scrobbled: no title found",
        ],
    ),
    (
        "queue backlog and dead letters",
        {
            "queue": {
                "pending": 3,
                "failed": 1,
                "oldest_pending_at": at(90),
                "oldest_pending_age": 5400.0,
            }
        },
        [
            "Queue:    3 pending, 1 failed; oldest from 10:30 (1 h 30 min ago)",
            "          see `trakt-scrobbled queue`; `trakt-scrobbled queue retry --all` "
            "sends the failed ones again",
        ],
    ),
    (
        "sender retrying",
        {
            "sender": {
                "state": "Trakt unreachable, retrying",
                "last_error": "could not reach Trakt for POST /scrobble/start: ConnectError",
            }
        },
        [
            "Sender:   Trakt unreachable, retrying; last error: could not reach Trakt for "
            "POST /scrobble/start: ConnectError"
        ],
    ),
    (
        "recent scrobbles, newest first, the last few only",
        {
            "recent": [
                {"at": at(0.01), "kind": "start", "item": "Show S01E01", "result": "watching"},
                {"at": at(2), "kind": "stop", "item": "The Matrix (1999)", "result": "watched"},
                *[
                    {"at": at(60 * 30), "kind": "start", "item": f"Old {i}", "result": "x"}
                    for i in range(5)
                ],
            ]
        },
        [
            "Recent:",
            "  11:59 (just now)  start Show S01E01: watching",
            "  11:58 (2 min ago)  stop The Matrix (1999): watched",
            "  2025-05-31 06:00 (1 d 6 h ago)  start Old 0: x",
        ],
    ),
    (
        "the household: each recent result names its account",
        {
            "recent": [
                {
                    "at": at(1),
                    "kind": "stop",
                    "item": "The Matrix (1999)",
                    "result": "watched",
                    "account": "bob",
                },
                {"at": at(2), "kind": "start", "item": "Show S01E01", "result": "watching"},
            ]
        },
        [
            "  11:59 (1 min ago)  bob: stop The Matrix (1999): watched",
            "  11:58 (2 min ago)  start Show S01E01: watching",
        ],
    ),
    (
        "ignored plays with reasons and counts",
        {
            "ignored": [
                {"at": at(1), "source": "mpv:/s", "label": "trailer.mkv", "reason": "trailer"},
                {"at": at(3), "source": "mpv:/s", "label": "t2.mkv", "reason": "trailer"},
                {"at": at(5), "source": "mpv:/s", "label": "x-sample.mkv", "reason": "sample"},
            ]
        },
        [
            "Not scrobbled: trailer ×2, sample ×1",
            "  11:59 (1 min ago)  trailer.mkv (mpv:/s): trailer",
            "  11:55 (5 min ago)  x-sample.mkv (mpv:/s): sample",
        ],
    ),
    (
        "config problems and a listener error",
        {
            "config": {"file": "/c.toml", "problems": ["/c.toml:3: server.port: out of range"]},
            "server": {"error": "cannot listen on 127.0.0.1:8642: Address already in use"},
        },
        [
            "Config:   /c.toml has problems; the daemon goes on with the previous one:",
            "  /c.toml:3: server.port: out of range",
            "Listener: cannot listen on 127.0.0.1:8642: Address already in use",
        ],
    ),
]


@pytest.mark.parametrize(("changes", "expected"), [t[1:] for t in TABLE], ids=[t[0] for t in TABLE])
def test_render(changes: dict[str, Any], expected: list[str]) -> None:
    text = render_status({**BASE, **changes}, now=NOW, tz=UTC)
    lines = text.splitlines()
    assert text.endswith("\n")
    for line in expected:
        assert line in lines, f"{line!r} not in:\n{text}"


def test_render_shows_only_the_last_few_recent_and_no_secret_fields() -> None:
    recent = [
        {"at": at(i), "kind": "start", "item": f"Item {i}", "result": "watching"} for i in range(9)
    ]
    text = render_status({**BASE, "recent": recent}, now=NOW, tz=UTC)
    assert "Item 4" in text
    assert "Item 5" not in text


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"version": "9.9", "auth": "weird", "players": {"no": "list"}, "playing": [None, 3]},
        {**BASE, "queue": {"pending": "many"}, "recent": [{"at": "yesterday"}]},
    ],
    ids=["empty", "wrong types", "odd values"],
)
def test_render_survives_another_versions_document(doc: dict[str, Any]) -> None:
    text = render_status(doc, now=NOW, tz=UTC)
    assert text.startswith("trakt-scrobbled ")
    assert "Queue:" in text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59.9, "59 s"), (60, "1 min"), (3599, "59 min"), (3660, "1 h 01 min"),
     (90000, "1 d 1 h")],
)  # fmt: skip
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


# --- the command, against a running daemon --------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeTrakt]:
    with FakeTrakt() as fake:
        fake.add_movie("The Matrix", 1999, trakt=481, imdb="tt0133093")
        yield fake


def test_not_running(tmp_path: Path, fake: FakeTrakt) -> None:
    home = Home.create(tmp_path, fake.url)
    for args in (("status",), ("status", "--json")):
        result = run_cli(home, *args)
        assert result.returncode == EXIT_NOT_RUNNING, result.stderr
        assert "trakt-scrobbled is not running" in result.stderr
        assert "trakt-scrobbled run" in result.stderr  # how to start it
        assert result.stdout == ""
        assert "Traceback" not in result.stderr


def test_a_playing_mpv_as_status_shows_it(
    tmp_path: Path,
    fake: FakeTrakt,
    sock_dir: Path,
    mpv_launcher: MpvLauncher,
    media: MediaFiles,
) -> None:
    home = Home.create(tmp_path, fake.url, players=f'[mpv]\nsockets = ["{sock_dir}/*.sock"]\n')
    log_in(fake, home)
    with Daemon(home) as daemon:
        daemon.wait_for_log("ready")
        mpv = mpv_launcher.start()
        mpv.control.loadfile(media.movie, start=60.0)
        fake.wait_for(lambda r: r.path == "/scrobble/start" and r.status == 201)

        deadline = time.monotonic() + 10.0
        while True:  # the start is recorded once Trakt's answer is in
            result = run_cli(home, "status", "--json")
            assert result.returncode == 0, result.stderr
            doc = json.loads(result.stdout)
            if doc["recent"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)

        assert result.stdout.count("\n") == 1, "one JSON object on one line"
        assert doc["pid"] == daemon.pid
        assert doc["auth"]["state"] == "logged in"
        (player,) = doc["players"]
        assert player["name"] == "mpv"
        assert [c["source"] for c in player["connected"]] == [f"mpv:{mpv.socket_path}"]
        (playing,) = doc["playing"]
        assert playing["state"] == "playing"
        assert playing["item"]["movie"]["ids"]["trakt"] == 481
        assert 40.0 <= playing["progress"] < 60.0
        assert doc["queue"]["pending"] == 0 and doc["queue"]["failed"] == 0
        assert doc["recent"][0]["kind"] == "start"
        assert doc["recent"][0]["result"] == "watching"

        human = run_cli(home, "status")
        assert human.returncode == 0, human.stderr
        out = human.stdout
        assert f"pid {daemon.pid}" in out
        assert "Trakt:    logged in, token valid until" in out
        assert f"  mpv: 1 connected\n    mpv:{mpv.socket_path}" in out
        line = next(x for x in out.splitlines() if x.startswith("  playing "))
        pct = int(line.split()[1].rstrip("%"))
        assert 40 <= pct < 60, line
        assert "The Matrix (1999)" in line
        assert "    Trakt: The Matrix (1999) [trakt 481, imdb tt0133093" in out, out
        assert "Queue:    0 pending, 0 failed" in out
        assert "start The Matrix (1999): watching" in out
        assert "Sender:   idle" in out
        assert daemon.terminate() == 0
