"""The fake Trakt, exercised through real HTTP: it must hold clients to the blueprint."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clocks import ManualClock
from tests.fake_trakt import (
    DeviceStatus,
    Episode,
    FakeTrakt,
    FaultKind,
    HistoryAction,
    Movie,
)
from trakt_scrobbled.events import Ids

REPO = Path(__file__).resolve().parent.parent
UA = "trakt-scrobbled-tests/1.0"
GUARDIANS = {"movie": {"title": "Guardians of the Galaxy", "year": 2014, "ids": {"trakt": 28}}}
PILOT = {"episode": {"ids": {"trakt": 16}}}
HEADERS = {"trakt-api-key": "test-client-id", "trakt-api-version": "2", "User-Agent": UA}


def fill(fake: FakeTrakt) -> None:
    fake.add_movie("Guardians of the Galaxy", 2014, trakt=28, imdb="tt2015381", tmdb=118340)
    fake.add_show(
        "Breaking Bad",
        2008,
        trakt=1,
        tvdb=81189,
        episodes=[
            Episode(1, 1, Ids(trakt=16, tvdb=349232), title="Pilot"),
            Episode(1, 2, Ids(trakt=17), title="Cat's in the Bag..."),
        ],
    )
    fake.add_show(
        "One Piece", 1999, trakt=37696, episodes=[Episode(9, 21, Ids(trakt=856373), number_abs=164)]
    )


def client(fake: FakeTrakt, token: str | None = None, **kwargs: Any) -> httpx.Client:
    headers = dict(HEADERS)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.Client(base_url=fake.url, headers=headers, timeout=5.0, **kwargs)


def creds(**extra: str) -> dict[str, str]:
    return {"client_id": "test-client-id", "client_secret": "test-secret", **extra}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeTrakt]:
    with FakeTrakt(
        clock=clock, device_interval=5, device_expires_in=600, post_interval=0
    ) as running:
        fill(running)
        yield running


@pytest.fixture
def api(fake: FakeTrakt) -> Iterator[httpx.Client]:
    with client(fake, fake.issue_token().access_token) as c:
        yield c


# --- headers -------------------------------------------------------------------------------


def test_every_request_must_carry_the_required_headers(fake: FakeTrakt) -> None:
    search, start = "/search/movie?query=guardians", {**GUARDIANS, "progress": 5}
    with client(fake, fake.issue_token().access_token) as c:
        assert c.get(search, headers={"trakt-api-key": "other"}).status_code == 403
        assert c.get(search, headers={"trakt-api-version": "1"}).status_code == 400
        no_ua = c.build_request("GET", search)
        del no_ua.headers["user-agent"]
        assert c.send(no_ua).status_code == 400
        text = c.post("/scrobble/start", content=b"{}", headers={"Content-Type": "text/plain"})
        assert text.status_code == 412
        json_type = {"Content-Type": "application/json"}
        assert c.post("/scrobble/start", content=b"{nope", headers=json_type).status_code == 400
    with client(fake) as anonymous:
        assert anonymous.post("/scrobble/start", json=start).status_code == 401
        assert anonymous.get("/sync/history").status_code == 401
        assert anonymous.get(search).status_code == 200
    with client(fake, "not-a-token") as forged:
        assert forged.post("/scrobble/start", json=start).status_code == 401
    assert fake.watching() is None


# --- OAuth ---------------------------------------------------------------------------------


def test_device_flow_runs_its_whole_cycle(fake: FakeTrakt, clock: ManualClock) -> None:
    with client(fake) as c:

        def new_code() -> dict[str, Any]:
            answer = c.post("/oauth/device/code", json={"client_id": "test-client-id"})
            assert answer.status_code == 200
            code: dict[str, Any] = answer.json()
            return code

        def poll(code: dict[str, Any], **override: str) -> httpx.Response:
            return c.post("/oauth/device/token", json=creds(code=code["device_code"], **override))

        code = new_code()
        assert len(code["user_code"]) == 8
        assert code["verification_url"] == "https://trakt.tv/activate"
        assert (code["interval"], code["expires_in"]) == (5, 600)
        assert poll(code).status_code == 400  # pending
        assert poll(code).status_code == 429  # faster than the interval
        clock.advance(5)
        assert poll(code, client_secret="wrong").status_code == 401
        assert poll({"device_code": "nope"}).status_code == 404
        assert fake.approve(code["user_code"]) == code["user_code"]
        token = poll(code)
        assert token.status_code == 200
        assert set(token.json()) >= {"access_token", "refresh_token", "expires_in", "created_at"}
        clock.advance(5)
        assert poll(code).status_code == 409  # already used

        denied = new_code()
        fake.deny()  # the newest pending code
        assert poll(denied).status_code == 418
        late = new_code()
        clock.advance(601)
        assert poll(late).status_code == 410
        fresh = new_code()
        fake.expire_device_codes()
        assert poll(fresh).status_code == 410

    with client(fake, token.json()["access_token"]) as authed:
        assert authed.get("/sync/history").status_code == 200
    statuses = {d.user_code: d.status for d in fake.device_codes()}
    assert statuses[code["user_code"]] is DeviceStatus.USED
    assert statuses[denied["user_code"]] is DeviceStatus.DENIED


def test_a_code_approved_by_another_user_gives_that_users_token(
    fake: FakeTrakt, clock: ManualClock
) -> None:
    """The household logs each account in with its own device code: whoever approves a code
    is whose token the device gets."""
    fake.add_user("alice")
    with client(fake) as c:
        code = c.post("/oauth/device/code", json={"client_id": "test-client-id"}).json()
        fake.approve(code["user_code"], user="alice")
        token = c.post("/oauth/device/token", json=creds(code=code["device_code"]))
        assert token.status_code == 200
    with client(fake, token.json()["access_token"]) as authed:
        assert authed.get("/sync/history").status_code == 200
    assert [r.user for r in fake.requests("/sync/history")] == ["alice"]


def test_refresh_tokens_are_single_use(fake: FakeTrakt, clock: ManualClock) -> None:
    old = fake.issue_token()
    with client(fake) as c:
        body = creds(
            refresh_token=old.refresh_token,
            grant_type="refresh_token",
            redirect_uri="urn:ietf:wg:oauth:2.0:oob",
        )
        assert c.post("/oauth/token", json={**body, "client_secret": "x"}).status_code == 401
        first = c.post("/oauth/token", json=body)
        assert first.status_code == 200
        new = first.json()
        assert new["refresh_token"] != old.refresh_token
        again = c.post("/oauth/token", json=body)
        assert again.status_code == 401
        assert again.json()["error"] == "invalid_grant"
        assert again.json()["error_description"].startswith("The provided authorization grant")
    with client(fake, old.access_token) as c_old, client(fake, new["access_token"]) as c_new:
        assert c_old.get("/sync/history").status_code == 200  # valid until its own expiry
        assert c_new.get("/sync/history").status_code == 200
        clock.advance(7 * 86400 + 1)
        assert c_old.get("/sync/history").status_code == 401
        assert c_new.get("/sync/history").status_code == 401


def test_revoked_and_expired_tokens_stop_working(fake: FakeTrakt) -> None:
    revoked, expired = fake.issue_token(), fake.issue_token()
    with client(fake) as c:
        answer = c.post("/oauth/revoke", json=creds(token=revoked.access_token))
        assert (answer.status_code, answer.json()) == (200, {})
    fake.expire_access_tokens()
    for token in (revoked.access_token, expired.access_token):
        with client(fake, token) as c:
            assert c.get("/sync/history").status_code == 401
    refreshed = fake.issue_token()
    with client(fake, refreshed.access_token) as c:
        assert c.get("/sync/history").status_code == 200


# --- scrobble ------------------------------------------------------------------------------


def test_scrobble_start_pause_scrobble_and_repeat(fake: FakeTrakt, api: httpx.Client) -> None:
    start = api.post("/scrobble/start", json={**GUARDIANS, "progress": 5})
    assert start.status_code == 201
    assert start.json()["action"] == "start"
    assert start.json()["movie"]["ids"]["imdb"] == "tt2015381"
    watching = fake.watching()
    assert watching is not None and watching.progress == 5

    pause = api.post("/scrobble/stop", json={**GUARDIANS, "progress": 40.5})
    assert (pause.status_code, pause.json()["action"]) == (201, "pause")
    assert [p.progress for p in fake.playback()] == [40.5]
    assert fake.watching() is None
    assert api.get("/sync/playback/movies").json()[0]["progress"] == 40.5

    api.post("/scrobble/start", json={**GUARDIANS, "progress": 41})
    assert fake.playback() == ()  # start clears the resume point

    done = api.post("/scrobble/stop", json={**GUARDIANS, "progress": 90})
    assert (done.status_code, done.json()["action"]) == (201, "scrobble")
    assert done.json()["id"] > 2**32
    (entry,) = fake.history()
    assert (entry.id, entry.action) == (done.json()["id"], HistoryAction.SCROBBLE)

    repeat = api.post("/scrobble/stop", json={**GUARDIANS, "progress": 99})
    assert repeat.status_code == 409
    assert set(repeat.json()) == {"watched_at", "expires_at"}
    assert len(fake.history()) == 1


def test_episodes_are_found_by_ids_numbers_or_absolute_number(
    fake: FakeTrakt, api: httpx.Client
) -> None:
    by_ids = api.post("/scrobble/start", json={**PILOT, "progress": 10})
    assert by_ids.json()["show"]["title"] == "Breaking Bad"
    by_numbers = api.post(
        "/scrobble/start",
        json={
            "show": {"ids": {"tvdb": 81189}},
            "episode": {"season": 1, "number": 2},
            "progress": 10,
        },
    )
    assert by_numbers.json()["episode"]["ids"]["trakt"] == 17
    absolute = api.post(
        "/scrobble/start",
        json={
            "show": {"title": "One Piece", "year": 1999},
            "episode": {"number_abs": 164},
            "progress": 3,
        },
    )
    assert (absolute.json()["episode"]["season"], absolute.json()["episode"]["number"]) == (9, 21)
    missing = api.post(
        "/scrobble/start", json={"movie": {"ids": {"imdb": "tt0000001"}}, "progress": 3}
    )
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/scrobble/start", {"progress": 10}),
        ("/scrobble/start", {**GUARDIANS, **PILOT, "progress": 10}),
        ("/scrobble/start", {**GUARDIANS}),
        ("/scrobble/start", {**GUARDIANS, "progress": "10"}),
        ("/scrobble/start", {**GUARDIANS, "progress": 101}),
        ("/scrobble/start", {"episode": {"season": 1, "number": 1}, "progress": 10}),
        ("/scrobble/stop", {**GUARDIANS, "progress": 0.5}),
    ],
)
def test_malformed_scrobbles_get_422_and_change_nothing(
    fake: FakeTrakt, api: httpx.Client, path: str, body: dict[str, Any]
) -> None:
    assert api.post(path, json=body).status_code == 422
    assert (fake.watching(), fake.playback(), fake.history()) == (None, (), ())


# --- sync ----------------------------------------------------------------------------------


def test_history_adds_are_not_deduplicated_and_read_back_newest_first(
    fake: FakeTrakt, api: httpx.Client
) -> None:
    body = {
        "movies": [
            {"watched_at": "2020-01-01T20:00:00.000Z", "ids": {"trakt": 28}},
            {"ids": {"imdb": "tt0000111"}},
        ],
        "episodes": [{"watched_at": "2020-01-02T20:00:00.000Z", "ids": {"trakt": 16}}],
        "shows": [{"ids": {"trakt": 1}, "seasons": [{"number": 1, "episodes": [{"number": 2}]}]}],
    }
    first = api.post("/sync/history", json=body)
    assert first.status_code == 201
    assert first.json()["added"] == {"movies": 1, "episodes": 2}
    assert first.json()["not_found"]["movies"] == [{"ids": {"imdb": "tt0000111"}}]
    assert api.post("/sync/history", json=body).status_code == 201
    assert len(fake.history()) == 6  # the same plays twice: Trakt does not de-duplicate

    page = api.get("/sync/history", params={"limit": 4})
    assert page.headers["X-Pagination-Item-Count"] == "6"
    assert page.headers["X-Pagination-Page-Count"] == "2"
    stamps = [e["watched_at"] for e in page.json()]
    assert stamps == sorted(stamps, reverse=True)
    assert stamps[0] == "2023-11-14T22:13:20.000Z"  # no watched_at: now, on the fake's clock
    movies = api.get("/sync/history/movies").json()
    assert [m["movie"]["ids"]["trakt"] for m in movies] == [28, 28]
    assert len(api.get("/sync/history/episodes/16").json()) == 2
    window = {"start_at": "2020-01-01T00:00:00Z", "end_at": "2020-01-01T23:59:59Z"}
    assert [e["type"] for e in api.get("/sync/history", params=window).json()] == ["movie"] * 2


# --- search --------------------------------------------------------------------------------


def test_search_by_text_and_by_id(fake: FakeTrakt, api: httpx.Client) -> None:
    hits = api.get("/search/movie", params={"query": "GUARDIANS galaxy"}).json()
    assert [(h["type"], h["movie"]["ids"]["trakt"]) for h in hits] == [("movie", 28)]
    assert hits[0]["score"] > 0
    assert api.get("/search/movie", params={"query": "guardians", "years": "2010"}).json() == []
    shows = api.get("/search/show", params={"query": "breaking bad", "years": "2005-2010"}).json()
    assert shows[0]["show"]["ids"]["tvdb"] == 81189
    episodes = api.get("/search/episode", params={"query": "pilot"}).json()
    assert episodes[0]["episode"]["ids"]["trakt"] == 16
    assert api.get("/search/movie").status_code == 400

    by_imdb = api.get("/search/imdb/tt2015381").json()
    assert [(h["type"], h["score"]) for h in by_imdb] == [("movie", None)]
    by_tvdb = api.get("/search/tvdb/349232", params={"type": "episode"}).json()
    assert by_tvdb[0]["show"]["title"] == "Breaking Bad"
    assert api.get("/search/trakt/16", params={"type": "movie"}).json() == []
    summary = api.get("/shows/breaking-bad/seasons/1/episodes/2")
    assert summary.json()["ids"]["trakt"] == 17


# --- rate limits ---------------------------------------------------------------------------


def test_writes_closer_than_one_second_get_429(clock: ManualClock) -> None:
    with FakeTrakt(clock=clock) as fake:
        fill(fake)
        with client(fake, fake.issue_token().access_token) as api:
            assert api.post("/scrobble/start", json={**GUARDIANS, "progress": 5}).status_code == 201
            clock.advance(0.9)
            limited = api.post("/scrobble/start", json={**PILOT, "progress": 5})
            assert limited.status_code == 429
            assert limited.headers["Retry-After"] == "1"
            assert json.loads(limited.headers["X-Ratelimit"])["name"] == "AUTHED_API_POST_LIMIT"
            watching = fake.watching()
            assert watching is not None and isinstance(watching.item, Movie)  # 429 changed nothing
            refresh = creds(
                refresh_token=fake.issue_token().refresh_token, grant_type="refresh_token"
            )
            assert api.post("/oauth/token", json=refresh).status_code == 200  # /oauth is exempt
            clock.advance(0.1)
            assert api.post("/scrobble/start", json={**PILOT, "progress": 5}).status_code == 201


def test_gets_are_limited_per_period(clock: ManualClock) -> None:
    with FakeTrakt(clock=clock, get_limit=2, get_period=300) as fake, client(fake) as c:
        assert [c.get("/search/movie?query=x").status_code for _ in range(3)] == [200, 200, 429]
        assert json.loads(c.get("/search/movie?query=x").headers["X-Ratelimit"])["limit"] == 2
        clock.advance(300)
        assert c.get("/search/movie?query=x").status_code == 200


# --- faults --------------------------------------------------------------------------------


def test_status_faults_answer_before_any_state_changes(fake: FakeTrakt, api: httpx.Client) -> None:
    fake.fail_next(2, 503, path_prefix="/scrobble")
    fake.fail_next(1, 520)
    assert api.get("/search/movie?query=guardians").status_code == 520
    assert [
        api.post("/scrobble/start", json={**GUARDIANS, "progress": 5}).status_code for _ in range(3)
    ] == [503, 503, 201]

    fake.fail_next(1, 429, retry_after=2)
    fake.fail_next(1, 429, html=True)
    slow = api.post("/scrobble/stop", json={**GUARDIANS, "progress": 90})
    assert (slow.status_code, slow.headers["Retry-After"]) == (429, "2")
    assert "X-Ratelimit" in slow.headers
    edge = api.post("/scrobble/stop", json={**GUARDIANS, "progress": 90})
    assert edge.status_code == 429
    assert edge.headers["Content-Type"].startswith("text/html")
    assert "Retry-After" not in edge.headers and "X-Ratelimit" not in edge.headers
    assert fake.history() == ()
    assert [r.fault for r in fake.requests("/scrobble")][-2:] == [FaultKind.STATUS] * 2


def test_drop_loses_the_request_but_drop_after_processing_loses_only_the_answer(
    fake: FakeTrakt, api: httpx.Client
) -> None:
    fake.drop_next(1, path_prefix="/scrobble/stop")
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/scrobble/stop", json={**GUARDIANS, "progress": 90})
    assert fake.history() == ()

    fake.drop_after_processing_next(1, method="POST")
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/scrobble/stop", json={**GUARDIANS, "progress": 90})
    assert len(fake.history()) == 1
    assert api.post("/scrobble/stop", json={**GUARDIANS, "progress": 90}).status_code == 409
    dropped = [r for r in fake.requests("/scrobble/stop") if r.status is None]
    assert [r.fault for r in dropped] == [FaultKind.DROP, FaultKind.DROP_AFTER]


def test_a_delayed_request_takes_effect_after_the_client_gave_up(
    fake: FakeTrakt, api: httpx.Client
) -> None:
    fake.delay_next(1, 0.5, path_prefix="/scrobble")
    with pytest.raises(httpx.ReadTimeout):
        api.post("/scrobble/stop", json={**GUARDIANS, "progress": 90}, timeout=0.1)
    fake.wait_until(lambda: len(fake.history()) == 1, timeout=5)
    assert fake.wait_for(lambda r: r.path == "/scrobble/stop").fault is FaultKind.DELAY


def test_outage_drops_or_answers_every_request(fake: FakeTrakt, api: httpx.Client) -> None:
    fake.set_outage(True)
    with pytest.raises(httpx.RemoteProtocolError):
        api.get("/search/movie?query=x")
    fake.set_outage(True, status=503)
    assert api.get("/search/movie?query=x").status_code == 503
    fake.set_outage(False)
    assert api.get("/search/movie?query=x").status_code == 200


# --- recording and lifecycle ---------------------------------------------------------------


def test_requests_are_recorded_and_waited_for(fake: FakeTrakt, api: httpx.Client) -> None:
    later = threading.Timer(0.1, api.post, ("/scrobble/start",), {"json": {**PILOT, "progress": 7}})
    later.start()
    try:
        seen = fake.wait_for(lambda r: r.path == "/scrobble/start", timeout=5)
    finally:
        later.join()
    assert (seen.method, seen.status, seen.json) == ("POST", 201, {**PILOT, "progress": 7})
    assert seen.headers["user-agent"] == UA
    assert seen.headers["authorization"].startswith("Bearer ")
    assert seen.wall > 0 and seen.monotonic <= time.monotonic()

    with pytest.raises(AssertionError) as failure:
        fake.wait_for(lambda r: r.path == "/scrobble/stop", timeout=0.2)
    message = str(failure.value)
    assert "POST /scrobble/start -> 201" in message
    assert seen.headers["authorization"].split()[1] not in message + repr(seen)


async def test_serves_async_tests(fake: FakeTrakt) -> None:
    async with httpx.AsyncClient(base_url=fake.url, headers=HEADERS) as c:
        assert (await c.get("/search/show?query=one piece")).status_code == 200
    seen = await fake.wait_for_async(lambda r: r.path == "/search/show")
    assert seen.query == {"query": "one piece"}


def test_restart_keeps_port_and_state(fake: FakeTrakt, api: httpx.Client) -> None:
    api.post("/scrobble/stop", json={**GUARDIANS, "progress": 90})
    url = fake.url
    fake.stop()
    with pytest.raises(httpx.TransportError):  # nothing listens
        api.get("/sync/history")
    fake.start()
    assert fake.url == url
    assert len(api.get("/sync/history").json()) == 1


def test_runs_standalone_until_signalled(tmp_path: Path) -> None:
    catalogue = tmp_path / "catalogue.json"
    catalogue.write_text(
        json.dumps({"movies": [{"title": "Tron", "year": 1982, "ids": {"trakt": 7}}]})
    )
    command = [sys.executable, "-m", "tests.fake_trakt", "--port", "0", "--auto-approve"]
    with subprocess.Popen(
        [*command, "--catalogue", str(catalogue)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        try:
            stdout = proc.stdout
            assert stdout is not None
            lines: queue.Queue[str] = queue.Queue()
            threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
            url = lines.get(timeout=10).strip()
            assert url.startswith("http://127.0.0.1:")
            with httpx.Client(base_url=url, headers=HEADERS, timeout=5) as c:
                assert c.get("/search/movie?query=tron").json()[0]["movie"]["ids"]["trakt"] == 7
                code = c.post("/oauth/device/code", json={"client_id": "test-client-id"}).json()
                token = c.post("/oauth/device/token", json=creds(code=code["device_code"]))
                assert token.status_code == 200  # --auto-approve
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def test_the_shared_fixture_serves_the_default_client(fake_trakt: FakeTrakt) -> None:
    with client(fake_trakt) as c:
        assert c.get("/search/movie?query=x").status_code == 200
    assert fake_trakt.requests()[0].headers["trakt-api-key"] == "test-client-id"
