"""Jellyfin and Emby webhooks through the real listener: the same rules as Plex (404 for a wrong
secret, compared in constant time; 413; 400; never 5xx), and a fuzz of over 10,000 bodies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import plex_payloads as px
from tests.realplayers import EventRecorder, running, wait_until
from tests.test_player_jellyfin import emby_hook, jf_hook
from tests.test_server import our_logs
from trakt_scrobbled.events import Ended, Paused, Playing
from trakt_scrobbled.players.jellyfin import Flavour, MediaServerWebhooks
from trakt_scrobbled.server import MAX_BODY, LocalServer

pytestmark = [pytest.mark.timeout(120)]

JF_SECRET = "jf-0123456789abcdefXYZ"
EMBY_SECRET = "emby-9876543210zyxwvuT"
PLEX_SECRET = "plex-aaaabbbbccccdddd"


@dataclass
class Stack:
    server: LocalServer
    jellyfin: MediaServerWebhooks
    emby: MediaServerWebhooks
    jf_events: EventRecorder
    emby_events: EventRecorder
    client: httpx.AsyncClient

    def url(self, name: str, secret: str) -> str:
        return f"http://127.0.0.1:{self.server.port}/{name}/{secret}"


@contextlib.asynccontextmanager
async def webhook_stack() -> AsyncIterator[Stack]:
    jellyfin = MediaServerWebhooks(Flavour.JELLYFIN, secret=JF_SECRET, users=["alice"])
    emby = MediaServerWebhooks(Flavour.EMBY, secret=EMBY_SECRET, users=["alice"])
    server = LocalServer("127.0.0.1", 0)
    for player in (jellyfin, emby):
        for route in player.routes():
            server.set_route(route.name, route.secret, route.handler)
    server.set_route("plex", PLEX_SECRET, lambda payload: "accepted")
    async with (
        running(jellyfin) as jf_events,
        running(emby) as emby_events,
        server,
        httpx.AsyncClient(timeout=10.0) as client,
    ):
        await wait_until(lambda: jellyfin.handle({}) == "ignored:event", 5)
        await wait_until(lambda: emby.handle({}) == "ignored:event", 5)
        yield Stack(server, jellyfin, emby, jf_events, emby_events, client)


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with webhook_stack() as running_stack:
        yield running_stack


async def test_jellyfin_posts_json_and_plays_end_to_end(stack: Stack) -> None:
    url = stack.url("jellyfin", JF_SECRET)
    for body in (
        jf_hook("PlaybackStart", 0),
        jf_hook("PlaybackProgress", 50, IsPaused=True),
        jf_hook("PlaybackStop", 60),
    ):
        assert (await stack.client.post(url, json=body)).status_code == 200
    assert [type(e) for e in stack.jf_events.events] == [Playing, Paused, Ended]


async def test_emby_posts_json_or_multipart_data(stack: Stack) -> None:
    url = stack.url("emby", EMBY_SECRET)
    response = await stack.client.post(url, json=emby_hook("playback.start", 0.0))
    assert response.status_code == 200
    data = json.dumps(emby_hook("playback.pause", 40.0)).encode()
    body, ctype = px.multipart_parts(
        [b'Content-Disposition: form-data; name="data"\r\n\r\n' + data], boundary="xyzzy"
    )
    response = await stack.client.post(url, content=body, headers={"Content-Type": ctype})
    assert response.status_code == 200
    form = urlencode({"data": json.dumps(emby_hook("playback.stop", 41.0))})
    response = await stack.client.post(
        url, content=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 200
    assert [type(e) for e in stack.emby_events.events] == [Playing, Paused, Ended]


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("jellyfin", "wrong-secret-000000000"),
        ("jellyfin", EMBY_SECRET),  # one route's secret opens no other
        ("emby", JF_SECRET),
        ("jellyfin", PLEX_SECRET),
        ("plex", JF_SECRET),
        ("jellyfin", JF_SECRET[:-1]),
        ("jellyfin", JF_SECRET + "x"),
        ("jellyfish", JF_SECRET),
    ],
)
async def test_a_wrong_secret_is_404(stack: Stack, name: str, secret: str) -> None:
    response = await stack.client.post(stack.url(name, secret), json=jf_hook("PlaybackStart", 0))
    assert response.status_code == 404
    assert stack.jf_events.events == []


async def test_a_route_switched_off_is_404_even_with_its_secret(stack: Stack) -> None:
    stack.server.set_route("jellyfin", "", None)
    response = await stack.client.post(stack.url("jellyfin", JF_SECRET), json={})
    assert response.status_code == 404
    with pytest.raises(ValueError, match="no webhook route"):
        stack.server.set_route("status", JF_SECRET, lambda payload: None)


async def test_too_large_wrong_method_and_malformed(stack: Stack) -> None:
    url = stack.url("jellyfin", JF_SECRET)
    big = await stack.client.post(
        url, content=b"{" + b" " * MAX_BODY + b"}", headers={"Content-Type": "application/json"}
    )
    assert big.status_code == 413
    assert (await stack.client.get(url)).status_code == 405
    for body, ctype in (
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"\xff\xfe", "application/x-www-form-urlencoded"),
        (b"x", "text/plain"),
    ):
        response = await stack.client.post(url, content=body, headers={"Content-Type": ctype})
        assert response.status_code == 400, body


async def test_secrets_never_reach_the_log(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await stack.client.post(stack.url("jellyfin", "nope-nope-nope-nope"), json={})
    await stack.client.post(stack.url("emby", EMBY_SECRET), content=b"{", headers={})
    await stack.client.post(stack.url("jellyfin", JF_SECRET), json=jf_hook("PlaybackStart", 0))
    logs = our_logs(caplog)
    assert "wrong secret" in logs
    for secret in (JF_SECRET, EMBY_SECRET, PLEX_SECRET, "nope-nope-nope-nope"):
        assert secret not in logs


# --- fuzz -----------------------------------------------------------------------------------

NASTY: list[object] = [
    None,
    True,
    False,
    0,
    -1,
    2**70,
    1e308,
    float("nan"),
    float("inf"),
    "",
    "True",
    "-5",
    "1e400",
    "tt0133093",
    "\u0000",
    "x" * 2000,
    [],
    {},
    [None],
    {"Imdb": None},
]
"""Values that bite: wrong types, huge, not finite, empty, look-alikes."""
JF_KEYS = [
    "NotificationType",
    "ItemType",
    "ItemId",
    "SeasonNumber",
    "EpisodeNumber",
    "EpisodeNumberEnd",
    "Provider_imdb",
    "Provider_tmdb",
    "Provider_tvdb",
    "PlaybackPositionTicks",
    "RunTimeTicks",
    "IsPaused",
    "PlayedToCompletion",
    "NotificationUsername",
    "UserId",
    "DeviceId",
]
EMBY_KEYS = ["Event", "User", "Item", "Session", "PlaybackInfo"]
_T = TypeVar("_T")


class Chooser(Protocol):
    """Where a body's choices come from: Hypothesis draws, or a seeded generator (cheap)."""

    def pick(self, options: Sequence[_T]) -> _T: ...
    def number(self, low: int, high: int) -> int: ...
    def blob(self, max_size: int) -> bytes: ...


class Drawn:
    def __init__(self, draw: st.DrawFn) -> None:
        self._draw = draw

    def pick(self, options: Sequence[_T]) -> _T:
        return self._draw(st.sampled_from(options))

    def number(self, low: int, high: int) -> int:
        return self._draw(st.integers(low, high))

    def blob(self, max_size: int) -> bytes:
        return self._draw(st.binary(max_size=max_size))


class Seeded:
    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def pick(self, options: Sequence[_T]) -> _T:
        return self._random.choice(options)

    def number(self, low: int, high: int) -> int:
        return self._random.randint(low, high)

    def blob(self, max_size: int) -> bytes:
        return self._random.randbytes(self._random.randint(0, max_size))


def value(c: Chooser, depth: int = 0) -> object:
    """A JSON value: a nasty leaf, a number, text, or (not too deep) a list or an object."""
    kind = c.pick(["nasty", "nasty", "int", "text", "list", "dict"] if depth < 2 else ["nasty"])
    if kind == "int":
        return c.number(-(2**40), 2**40)
    if kind == "text":
        return c.blob(12).decode("utf-8", "replace")
    if kind == "list":
        return [value(c, depth + 1) for _ in range(c.number(0, 3))]
    if kind == "dict":
        return {c.pick(["a", "Id", "Name", ""]): value(c, depth + 1) for _ in range(c.number(0, 3))}
    return c.pick(NASTY)


def payload(c: Chooser, emby: bool) -> object:
    """A webhook as the server sends it with a few values broken, or any JSON value."""
    if c.number(0, 4) == 0:
        return value(c)
    position = float(c.number(0, 10**6))
    if emby:
        body = emby_hook(c.pick(["playback.start", "playback.pause", "playback.stop"]), position)
        keys = EMBY_KEYS
    else:
        body = jf_hook(c.pick(["PlaybackStart", "PlaybackProgress", "PlaybackStop"]), position)
        keys = JF_KEYS
    for _ in range(c.number(0, 4)):
        body[c.pick(keys)] = value(c)
    return body


def webhook_request(c: Chooser) -> bytes:
    """One raw HTTP request to /jellyfin or /emby: JSON, multipart, form, or any bytes."""
    emby = c.pick([False, True])
    path = f"/emby/{EMBY_SECRET}" if emby else f"/jellyfin/{JF_SECRET}"
    kind = c.pick(["json", "json", "multipart", "form", "raw"])
    data = json.dumps(payload(c, emby)).encode()
    if kind == "json":
        body, ctype = data, "application/json"
        if c.pick([False, True]):
            body = body[: c.number(0, len(body))]
    elif kind == "multipart":
        name = c.pick([b"data", b"payload", b"other"])
        content = data if c.pick([False, True]) else c.blob(64)
        part = b'Content-Disposition: form-data; name="' + name + b'"\r\n\r\n' + content
        body, ctype = px.multipart_parts([part], boundary="fz")
        if c.pick([False, True]):
            body = body[: c.number(0, len(body))]
    elif kind == "form":
        body = urlencode({c.pick(["data", "payload", "x"]): data.decode()}).encode()
        ctype = "application/x-www-form-urlencoded"
    else:
        body = c.blob(256)
        ctype = c.pick(["application/json", "text/plain", "multipart/form-data"])
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@st.composite
def drawn_requests(draw: st.DrawFn) -> bytes:
    return webhook_request(Drawn(draw))


BATCH = 25
EXAMPLES = 410
_STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")


async def _pipeline(port: int, requests: list[bytes]) -> list[int]:
    """Send the requests on one connection at once; the status of each answer, in order."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"".join(requests))
        await writer.drain()
        got = b""
        async with asyncio.timeout(20):
            while len(_STATUS.findall(got)) < len(requests) or not got.endswith(b"\n"):
                chunk = await reader.read(65536)
                if not chunk:
                    break
                got += chunk
        return [int(s) for s in _STATUS.findall(got)]
    finally:
        writer.close()


async def _fuzz(
    caplog: pytest.LogCaptureFixture, batches: st.SearchStrategy[list[bytes]], examples: int
) -> dict[int, int]:
    """Batches of raw requests, pipelined: each is answered 200, 400 or 413, nothing is logged
    as an error, and a valid webhook is still taken after them all. Statuses, counted."""
    answered: dict[int, int] = {}
    async with webhook_stack() as stack:
        port, loop = stack.server.port, asyncio.get_running_loop()

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(batch=batches)
        def fuzz(batch: list[bytes]) -> None:
            # Hypothesis drives from a thread; the requests go out on the listener's loop.
            statuses = asyncio.run_coroutine_threadsafe(_pipeline(port, batch), loop).result(30)
            assert len(statuses) == len(batch), statuses
            for status in statuses:
                answered[status] = answered.get(status, 0) + 1
            assert set(statuses) <= {200, 400, 413}, statuses

        await asyncio.to_thread(fuzz)
        ok = await stack.client.post(
            stack.url("jellyfin", JF_SECRET), json=jf_hook("PlaybackStart", 0, DeviceId="last")
        )
        assert ok.status_code == 200
        await stack.jf_events.wait_for(Playing, source="jellyfin:last")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    return answered


async def test_fuzz_drawn_bodies(caplog: pytest.LogCaptureFixture) -> None:
    """Every choice drawn by Hypothesis (it shrinks a failure to the smallest body)."""
    batches = st.lists(drawn_requests(), min_size=BATCH, max_size=BATCH)
    answered = await _fuzz(caplog, batches, 40)
    assert sum(answered.values()) == 40 * BATCH


@pytest.mark.slow
async def test_fuzz_over_10000_bodies_no_crash_no_5xx(caplog: pytest.LogCaptureFixture) -> None:
    """The same bodies, each from a seed Hypothesis draws: 10,000 of them in seconds."""
    seeds = st.lists(st.integers(0, 2**64), min_size=BATCH, max_size=BATCH)
    batches = seeds.map(lambda batch: [webhook_request(Seeded(seed)) for seed in batch])
    answered = await _fuzz(caplog, batches, EXAMPLES)
    assert sum(answered.values()) >= 10_000, answered
    assert answered.get(200, 0) > 1000 and answered.get(400, 0) > 1000, answered
