"""Attacks from the hostile-conditions run (issue 16), each replayed against the real parts.

Trakt is the fake on loopback; the listener, the outbox, the sender and the stream splitters
are the real ones. Each test first shows that the attack took effect, then that the promise
held: nothing lost, nothing sent twice, no 5xx, no crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clocks import DrivenClock
from tests.daemon import Home, log_in
from tests.fake_trakt import FakeTrakt
from tests.plex_payloads import SECRET, movie, multipart, plex_stack, webhook
from tests.realplayers import wait_until
from tests.smallfs import fill, mount_small_fs, unmount
from trakt_scrobbled import server as server_module
from trakt_scrobbled.app import App
from trakt_scrobbled.clock import SystemClock
from trakt_scrobbled.config import ConfigError, load_config, parse_config
from trakt_scrobbled.doctor import check_state
from trakt_scrobbled.events import Ids, MediaType, Playing, Scrobble, ScrobbleVerb, TraktItem
from trakt_scrobbled.outbox import Outbox, RowState
from trakt_scrobbled.paths import ensure_state_dir, resolve_paths
from trakt_scrobbled.players import kodi as kodi_module
from trakt_scrobbled.players.kodi import _JsonStream
from trakt_scrobbled.redact import mask_url, mask_urls
from trakt_scrobbled.sender import Sender, SenderState
from trakt_scrobbled.server import LocalServer
from trakt_scrobbled.store import open_db
from trakt_scrobbled.trakt.auth import Auth, Token, TokenStore
from trakt_scrobbled.trakt.client import MAX_RETRY_AFTER, TraktClient
from trakt_scrobbled.trakt.ratelimit import PostRateLimiter

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-secret"


# --- a sender rig on any state folder ------------------------------------------------------------


@dataclass
class Rig:
    fake: FakeTrakt
    outbox: Outbox
    sender: Sender
    client: TraktClient
    matrix: TraktItem
    heat: TraktItem

    async def until(self, condition: Callable[[], bool], limit: float = 10.0) -> None:
        """Bounded wait on state the sender task writes (SQLite rows, its fields)."""
        async with asyncio.timeout(limit):
            while not condition():  # noqa: ASYNC110 - no event exists for a SQLite row count
                await asyncio.sleep(0.02)


def watched(item: TraktItem, play: str, progress: float = 95.0) -> Scrobble:
    return Scrobble(ScrobbleVerb.STOP, play, item, progress, watched=True)


def started(item: TraktItem, play: str) -> Scrobble:
    return Scrobble(ScrobbleVerb.START, play, item, 10.0, watched=False)


@contextlib.asynccontextmanager
async def sender_rig(
    fake: FakeTrakt,
    state_dir: Path,
    token_dir: Path,
    *,
    backoff: tuple[float, float] = (0.1, 0.5),
    run: bool = True,
) -> AsyncIterator[Rig]:
    clock = SystemClock()
    m = fake.add_movie("The Matrix", 1999, imdb="tt0133093")
    h = fake.add_movie("Heat", 1995, imdb="tt0113277")
    matrix = TraktItem(MediaType.MOVIE, Ids(trakt=m.ids.trakt), title="The Matrix", year=1999)
    heat = TraktItem(MediaType.MOVIE, Ids(trakt=h.ids.trakt), title="Heat", year=1995)
    store = TokenStore(token_dir / "token.json")
    pair = fake.issue_token()
    store.save(Token(pair.access_token, pair.refresh_token, pair.created_at + pair.expires_in))
    conn = open_db(state_dir / "state.db")
    outbox = Outbox(conn, clock)
    auth = Auth(store, clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    limiter = PostRateLimiter(clock, 0.1)
    client = TraktClient(fake.url, CLIENT_ID, limiter, token=auth.access_token, timeout=2.0)
    sender = Sender(
        outbox,
        client,
        auth,
        clock,
        rng=random.Random(7),
        backoff_base=backoff[0],
        backoff_cap=backoff[1],
        busy_delay=0.2,
        limiter=limiter,
        restart_gap=0.0,
    )
    rig = Rig(fake, outbox, sender, client, matrix, heat)
    tasks = [asyncio.create_task(outbox.keep_trying())]
    if run:
        tasks.append(asyncio.create_task(sender.run()))
    try:
        yield rig
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.aclose()
        conn.close()


@pytest.fixture
def fake() -> Iterator[FakeTrakt]:
    """Trakt's POST spacing shortened to the sender's 0.1 s, so that tests go faster."""
    with FakeTrakt(post_interval=0.1) as fake:
        yield fake


def loop_errors() -> list[dict[str, Any]]:
    """What the running loop's exception handler hears (an unretrieved task exception...)."""
    heard: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, ctx: heard.append(ctx))
    return heard


# --- 1. a full disk ------------------------------------------------------------------------------


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "small"
    mount_small_fs(where, "2m")
    yield where
    unmount(where)


async def test_a_full_disk_holds_the_watch_in_memory_and_delivers_it_once_freed(
    fake: FakeTrakt,
    small_fs: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    heard = loop_errors()
    caplog.set_level(logging.INFO)
    async with sender_rig(fake, small_fs, tmp_path, run=False) as rig:
        # A watch queued before the disk filled, then the disk full, then a whole play.
        rig.outbox.enqueue(watched(rig.matrix, "before"))
        filler = fill(small_fs)
        sending = asyncio.create_task(rig.sender.run())
        try:
            assert rig.outbox.enqueue(started(rig.heat, "during")) == 0
            assert rig.outbox.enqueue(watched(rig.heat, "during"), watch_keys=("heat",)) == 0
            assert rig.outbox.held == 2, "the disk was not full: the attack did not happen"
            assert rig.outbox.write_error is not None and "full" in rig.outbox.write_error
            # A second play of the same watch is still recognised while it is only in memory.
            assert rig.outbox.watched_since(("heat",), 0) is not None
            await asyncio.sleep(2.5)  # retries fail meanwhile (the wait *is* the attack)
            assert rig.outbox.held == 2
            assert fake.history() == ()
            errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(errors) == 1, [r.getMessage() for r in errors]
            assert "held in memory" in errors[0].getMessage()

            filler.unlink()  # space is back
            await rig.until(lambda: rig.outbox.held == 0 and rig.outbox.counts().pending == 0)
            await rig.until(lambda: len(fake.history()) == 2)
            assert rig.outbox.write_error is None
        finally:
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
    stops = [r for r in fake.requests("/scrobble/stop") if r.status == 201]
    assert len(stops) == 2  # each watch exactly once
    assert sorted(e.item.title for e in fake.history()) == ["Heat", "The Matrix"]
    # durable: what is on disk now says both were delivered
    conn = open_db(small_fs / "state.db")
    try:
        outbox = Outbox(conn, SystemClock())
        assert outbox.counts().pending == 0
        assert sum(r.result == "watched" for r in outbox.recent(10)) == 2
    finally:
        conn.close()
    assert heard == []


def test_stopping_while_the_disk_is_still_full_says_what_is_lost(
    small_fs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conn = open_db(small_fs / "state.db")
    try:
        outbox = Outbox(conn, SystemClock())
        fill(small_fs)
        heat = TraktItem(MediaType.MOVIE, Ids(trakt=7), title="Heat", year=1995)
        outbox.enqueue(watched(heat, "p1"))
        assert outbox.held == 1
        assert outbox.lose_held() == 1
        assert "lost: stop Heat (1995)" in caplog.text
    finally:
        conn.close()


def test_doctor_says_the_state_disk_is_full(small_fs: Path) -> None:
    paths = resolve_paths({"XDG_STATE_HOME": str(small_fs), "HOME": str(small_fs)}, None)
    ensure_state_dir(paths)
    fill(small_fs)
    failed = [c for c in check_state(paths) if c.failed]
    assert any("full" in c.message for c in failed), failed


# --- 3. a 2xx that is not Trakt's JSON -----------------------------------------------------------


async def test_a_captive_portal_page_is_in_doubt_not_a_failure(
    fake: FakeTrakt, tmp_path: Path
) -> None:
    async with sender_rig(fake, tmp_path, tmp_path) as rig:
        fake.fail_next(1, status=200, html=True, path_prefix="/scrobble")
        rig.outbox.enqueue(watched(rig.matrix, "p1"))
        await rig.until(lambda: rig.outbox.counts().pending == 0)
        assert rig.outbox.rows(RowState.DEAD) == []
        statuses = [r.status for r in fake.requests("/scrobble/stop")]
        assert statuses == [200, 201]  # the portal's page, then Trakt itself
        assert len(fake.history()) == 1
        assert rig.outbox.recent(1)[0].result == "watched"


async def test_a_truncated_answer_is_not_sent_twice(fake: FakeTrakt, tmp_path: Path) -> None:
    async with sender_rig(fake, tmp_path, tmp_path) as rig:
        fake.truncate_after_processing_next(1, path_prefix="/scrobble")
        rig.outbox.enqueue(watched(rig.matrix, "p1"))
        await rig.until(lambda: rig.outbox.counts().pending == 0)
        assert rig.outbox.rows(RowState.DEAD) == []
        assert len(fake.history()) == 1  # it had reached Trakt: never a second play
        assert rig.outbox.recent(1)[0].result in ("already scrobbled", "already in history")


# --- 12. any success from Trakt ends the waiting -------------------------------------------------


async def test_a_success_elsewhere_sends_the_backlog_at_once(
    fake: FakeTrakt, tmp_path: Path
) -> None:
    async with sender_rig(fake, tmp_path, tmp_path, backoff=(120.0, 300.0)) as rig:
        fake.set_outage(True)
        rig.outbox.enqueue(watched(rig.matrix, "p1"))
        await rig.until(lambda: rig.sender.state is SenderState.RETRYING)
        fake.set_outage(False)
        # An identification search (any caller of the same client) gets an answer ...
        await rig.client.get("/search/movie", {"query": "heat"})
        # ... and the row does not wait out its two-minute backoff.
        await rig.until(lambda: rig.outbox.counts().pending == 0, limit=10.0)
        assert len(fake.history()) == 1


async def test_a_new_watch_is_the_probe_that_finds_trakt_back(
    fake: FakeTrakt, tmp_path: Path
) -> None:
    async with sender_rig(fake, tmp_path, tmp_path, backoff=(120.0, 300.0)) as rig:
        fake.set_outage(True)
        rig.outbox.enqueue(watched(rig.matrix, "p1"))
        await rig.until(lambda: rig.sender.state is SenderState.RETRYING)
        fake.set_outage(False)
        rig.outbox.enqueue(watched(rig.heat, "p2"))  # the user plays on: tried at once
        await rig.until(lambda: rig.outbox.counts().pending == 0, limit=10.0)
        assert len(fake.history()) == 2


async def test_success_listeners_hear_successes_only(fake: FakeTrakt) -> None:
    heard: list[str] = []
    client = TraktClient(fake.url, CLIENT_ID, PostRateLimiter(SystemClock(), 0.0))
    client.on_success(lambda: heard.append("ok"))
    async with client:
        fake.fail_next(1, status=503)
        with contextlib.suppress(Exception):
            await client.get("/search/movie", {"query": "x"})
        assert heard == []
        await client.get("/search/movie", {"query": "x"})
        assert heard == ["ok"]


# --- 13. a very long Retry-After -----------------------------------------------------------------


async def test_a_huge_retry_after_is_capped_and_shown(
    fake: FakeTrakt, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with sender_rig(fake, tmp_path, tmp_path) as rig:
        fake.fail_next(1, status=429, retry_after=86400, path_prefix="/scrobble")
        rig.outbox.enqueue(watched(rig.matrix, "p1"))
        await rig.until(lambda: rig.sender.state is SenderState.RATE_LIMITED)
        until = rig.sender.waiting_until
        assert until is not None
        assert time.time() + MAX_RETRY_AFTER - 60 <= until <= time.time() + MAX_RETRY_AFTER + 1
        assert rig.sender.last_error is not None and "wait" in rig.sender.last_error
        assert "waiting 3600 s at most" in caplog.text
        assert rig.outbox.counts().pending == 1  # kept, not given up


# --- 4. slow-loris on the listener ---------------------------------------------------------------


async def _slow_client(port: int, source: str, stop: asyncio.Event, reconnect: bool) -> None:
    """Opens a connection and trickles a head, a byte a second; again when cut, if asked."""
    while not stop.is_set():
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        except OSError:
            await asyncio.sleep(0.05)
            continue
        try:
            for byte in b"POST /plex/x HTTP/1.1\r\nHost: x\r\n":
                if stop.is_set():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(1.0)  # the trickle is the attack
        except OSError:
            pass
        finally:
            writer.close()
        if not reconnect:
            await stop.wait()


@pytest.mark.parametrize(
    ("source", "reconnect"),
    [("127.0.0.1", False), ("127.0.0.2", True)],
    ids=["same-address-as-plex", "another-host-reconnecting"],
)
async def test_webhooks_are_answered_during_a_200_connection_slowloris(
    source: str, reconnect: bool
) -> None:
    async with plex_stack() as stack:
        stop = asyncio.Event()
        attackers = [
            asyncio.create_task(_slow_client(stack.server.port, source, stop, reconnect))
            for _ in range(200)
        ]
        try:
            await wait_until(
                lambda: len(stack.server._connections) >= 16, what="the attackers connected"
            )
            await asyncio.sleep(0.5)  # let the flood settle in
            answered = []
            for n in range(7):
                meta = movie(view_offset=1000 * n, rating_key=str(5000 + n))
                response = await stack.post(webhook("media.play", meta))
                answered.append(response.status_code)
            assert answered == [200] * 7
            assert len(stack.events.events) >= 1
        finally:
            stop.set()
            for task in attackers:
                task.cancel()
            await asyncio.gather(*attackers, return_exceptions=True)


async def _slow_body(port: int, stop: asyncio.Event) -> None:
    """A whole head, then a body trickled in a byte a second: it holds a request open."""
    with contextlib.suppress(OSError):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST /plex/{SECRET} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 100000\r\n\r\n".encode()
        )
        while not stop.is_set():
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(1.0)  # the trickle is the attack
        writer.close()


async def test_webhooks_get_in_past_200_trickled_bodies_from_plexs_own_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server_module, "SLOW_REQUEST", 0.5)
    async with plex_stack() as stack:
        stop = asyncio.Event()
        attackers = [asyncio.create_task(_slow_body(stack.server.port, stop)) for _ in range(200)]
        try:
            await wait_until(lambda: stack.server.requests_in_flight >= 16, what="bodies begun")
            await asyncio.sleep(0.6)  # they are slow requests now
            codes = []
            for n in range(7):
                meta = movie(view_offset=1000 * n, rating_key=str(6000 + n))
                codes.append((await stack.post(webhook("media.play", meta))).status_code)
            assert codes == [200] * 7
        finally:
            stop.set()
            for task in attackers:
                task.cancel()
            await asyncio.gather(*attackers, return_exceptions=True)


# --- 8. a lone surrogate in a Plex title ---------------------------------------------------------


async def test_a_lone_surrogate_in_a_title_is_replaced_at_the_listener() -> None:
    async with plex_stack() as stack:
        meta = movie(title="Caf\ud800", view_offset=0)
        body = json.dumps(webhook("media.play", meta)).encode()  # "\ud800" as a JSON escape
        assert b"\\ud800" in body
        response = await stack.client.post(
            stack.url, content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200
        (event,) = stack.events.events
        assert isinstance(event, Playing)
        assert event.media.title == "Caf\ufffd"
        event.media.title.encode("utf-8")  # printable, storable


# --- 5. secrets in URLs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("http://10.0.0.2:32400/?X-Plex-Token=abcDEF123secret", "abcDEF123secret"),
        ("http://plexuser:hunter2pass@10.0.0.2:32400", "hunter2pass"),
        ("https://me:pw-zz9@api.example.test/", "pw-zz9"),
    ],
)
def test_a_url_secret_never_appears_in_a_config_problem(url: str, secret: str) -> None:
    text = f'[plex]\nurl = "{url}"\n[trakt]\napi_url = "{url}?x=1"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, {})
    rendered = "\n".join(p.render(Path("/c.toml")) for p in caught.value.problems)
    assert "must" in rendered  # the problem is reported ...
    assert secret not in rendered and secret not in str(caught.value)  # ... without the secret
    assert secret not in mask_url(url)
    assert "10.0.0.2" in mask_url(url) or "api.example.test" in mask_url(url)


def test_masking_keeps_what_says_which_url() -> None:
    assert (
        mask_url("http://h:1/p?X-Plex-Token=t&b=2#f") == "http://h:1/p?X-Plex-Token=***&b=***#***"
    )
    assert mask_url("https://u:p@h/x") == "https://***@h/x"
    assert mask_urls("at http://u:p@h/x?a=1, then") == "at http://***@h/x?a=***, then"
    assert mask_url("not a url") == "not a url"


# --- 7. big objects on Kodi's stream -------------------------------------------------------------


def test_a_big_unfinished_kodi_object_is_scanned_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """4 MB in 64 KB reads: each read scans only its own bytes (it used to re-parse them all)."""
    movies = [{"title": f"Movie {i}", "file": f"/m/{i}.mkv", "movieid": i} for i in range(80000)]
    text = json.dumps({"id": 1, "jsonrpc": "2.0", "result": {"movies": movies}})
    assert len(text) > 4_000_000
    scanned: list[int] = []
    skip = kodi_module._SKIP

    class CountingSkip:
        """The splitter's one scanning regex, counting the characters it is run over."""

        def match(self, buffer: str, pos: int) -> re.Match[str] | None:
            found = skip.match(buffer, pos)
            scanned.append(found.end() - pos if found else 0)
            return found

    monkeypatch.setattr(kodi_module, "_SKIP", CountingSkip())
    stream = _JsonStream()
    pieces = [text[i : i + 65536] for i in range(0, len(text) - 1, 65536)]
    pieces[-1] = pieces[-1][:-1]  # never finished, for now
    for piece in pieces:
        assert stream.feed(piece) == ([], 0)
    assert stream.pending == len(text) - 1
    assert sum(scanned) <= len(text)  # linear: every character scanned at most once
    assert stream.feed(text[-1]) == ([json.loads(text)], 0)


def test_garbage_with_brackets_does_not_swallow_the_next_message() -> None:
    stream = _JsonStream()
    objects, skipped = stream.feed('{oops {"a": 1}] {"method": "Player.OnPlay"}')
    assert objects == [{"method": "Player.OnPlay"}]
    assert skipped > 0
    deep = "[" * 100_000 + "]" * 100_000
    objects, _ = stream.feed("{" + '"x":' + deep + "}" + '{"b": 2}')
    assert objects[-1] == {"b": 2}  # a nesting too deep to decode is garbage, not a crash


# --- 13. smaller ones ----------------------------------------------------------------------------


def test_a_damaged_token_file_is_one_error_not_one_per_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "token.json"
    path.write_text("{not json")
    store = TokenStore(path)
    for _ in range(5):
        assert store.load() is None
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "damaged" in errors[0].getMessage()


async def test_a_listener_cannot_be_starved_by_one_client_holding_idle_sockets() -> None:
    """200 raw sockets that never send a byte, from one address: a webhook still gets in."""
    got: list[object] = []
    server = LocalServer("127.0.0.1", 0, plex_secret=SECRET, on_webhook=got.append)
    async with server:
        idle = []
        for _ in range(200):
            sock = socket.socket()
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                sock.connect(("127.0.0.1", server.port))
            idle.append(sock)
        try:
            await wait_until(lambda: len(server._connections) >= 16, what="idle sockets taken")
            body, ctype = multipart(webhook("media.play", movie()))
            async with httpx.AsyncClient(timeout=5.0) as client:
                url = f"http://127.0.0.1:{server.port}/plex/{SECRET}"
                response = await client.post(url, content=body, headers={"Content-Type": ctype})
            assert response.status_code == 200
            assert len(got) == 1
        finally:
            for sock in idle:
                sock.close()


async def test_uptime_survives_a_backward_clock_jump(fake: FakeTrakt, tmp_path: Path) -> None:
    home = Home.create(tmp_path, fake.url)
    log_in(fake, home)
    clock = DrivenClock()  # sleepers wait: only the test moves time
    paths = resolve_paths(home.env(), None)
    config = load_config(paths.config_file, {})
    daemon = App(config, paths, clock=clock, env={})
    stop = asyncio.Event()
    running_app = asyncio.create_task(daemon.run(stop))
    try:
        await wait_until(lambda: hasattr(daemon, "control"), 10, "ready")
        clock.advance(5.0)
        clock.wall -= 3600.0  # the wall clock set back an hour (NTP, a wrong RTC)
        assert daemon.status_json()["uptime"] == 5.0
    finally:
        stop.set()
        await asyncio.wait_for(running_app, 10)
