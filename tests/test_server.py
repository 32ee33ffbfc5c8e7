"""The local listener over real HTTP on 127.0.0.1: the rules for webhooks and `/status`.

The listener runs on an ephemeral port; bodies are built as Plex builds them
(`tests.plex_payloads`), or broken on purpose, or random (hypothesis).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests import plex_payloads as px
from tests.plex_payloads import SECRET, Stack, plex_stack
from tests.realplayers import wait_until
from trakt_scrobbled import server as server_module
from trakt_scrobbled.events import Playing
from trakt_scrobbled.server import MAX_BODY, LocalServer, ServerError, _is_loopback

pytestmark = [pytest.mark.timeout(60)]

STATUS = {"version": "0.1.0", "players": ["plex"], "outbox": {"pending": 0}}


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with plex_stack(status=lambda: STATUS) as running:
        yield running


class Recorder:
    """A webhook handler that keeps what it was given."""

    def __init__(self) -> None:
        self.payloads: list[Mapping[str, Any]] = []

    def __call__(self, payload: Mapping[str, Any]) -> str:
        self.payloads.append(payload)
        return "accepted"


@contextlib.asynccontextmanager
async def bare_server(
    handler: Any = None, **kw: Any
) -> AsyncIterator[tuple[LocalServer, httpx.AsyncClient]]:
    server = LocalServer("127.0.0.1", 0, plex_secret=SECRET, on_webhook=handler, **kw)
    async with server, httpx.AsyncClient(timeout=10.0) as client:
        yield server, client


def valid_body(event: str = "media.play") -> tuple[bytes, dict[str, str]]:
    body, ctype = px.multipart(px.webhook(event, px.movie(view_offset=0)))
    return body, {"Content-Type": ctype}


# --- the secret -----------------------------------------------------------------------------------


async def test_a_valid_webhook_is_answered_200(stack: Stack) -> None:
    body, headers = valid_body()
    response = await stack.client.post(stack.url, content=body, headers=headers)
    assert response.status_code == 200
    assert [type(e) for e in stack.events.events] == [Playing]


@pytest.mark.parametrize(
    "path",
    [f"/plex/{SECRET}x", f"/plex/{SECRET[:-1]}", "/plex/", "/plex", f"/plex/{SECRET}/more", "/"],
)
async def test_a_wrong_or_missing_secret_is_404(stack: Stack, path: str) -> None:
    body, headers = valid_body()
    url = f"http://127.0.0.1:{stack.server.port}{path}"
    response = await stack.client.post(url, content=body, headers=headers)
    assert response.status_code == 404
    assert SECRET not in response.text
    assert stack.events.events == []


async def test_plex_switched_off_is_404_even_with_the_secret(stack: Stack) -> None:
    stack.server.set_plex("", None)
    body, headers = valid_body()
    assert (await stack.client.post(stack.url, content=body, headers=headers)).status_code == 404
    stack.server.set_plex(SECRET, stack.player.handle)
    assert (await stack.client.post(stack.url, content=body, headers=headers)).status_code == 200


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "HEAD"])
async def test_other_methods_are_405(stack: Stack, method: str) -> None:
    response = await stack.client.request(method, stack.url)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


# --- bodies ---------------------------------------------------------------------------------------


async def test_a_declared_length_over_10_mb_is_413(stack: Stack) -> None:
    body, ctype = px.multipart(px.webhook("media.play", px.movie()), thumb=px.jpeg(MAX_BODY))
    assert len(body) > MAX_BODY
    response = await stack.client.post(stack.url, content=body, headers={"Content-Type": ctype})
    assert response.status_code == 413
    assert stack.events.events == []


async def test_a_chunked_body_over_10_mb_is_413_while_streaming(stack: Stack) -> None:
    body, ctype = px.multipart(px.webhook("media.play", px.movie()), thumb=px.jpeg(MAX_BODY))

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 256 * 1024):
            yield body[start : start + 256 * 1024]

    response = await stack.client.post(stack.url, content=chunks(), headers={"Content-Type": ctype})
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    assert stack.events.events == []


async def test_a_body_just_under_the_limit_is_taken(stack: Stack) -> None:
    body, ctype = px.multipart(px.webhook("media.play", px.movie()), thumb=px.jpeg(MAX_BODY - 4096))
    assert len(body) <= MAX_BODY
    response = await stack.client.post(stack.url, content=body, headers={"Content-Type": ctype})
    assert response.status_code == 200
    assert len(stack.events.events) == 1


def _part(name: str, content: bytes, ctype: str = "application/json") -> bytes:
    return (
        f'Content-Disposition: form-data; name="{name}"\r\nContent-Type: {ctype}\r\n\r\n'.encode()
        + content
    )


BAD_BODIES: dict[str, tuple[bytes, str]] = {
    "no boundary": (b"--x\r\n\r\n{}\r\n--x--\r\n", "multipart/form-data"),
    "no starting boundary": (b"just some bytes", "multipart/form-data; boundary=abc"),
    "cut short": (
        px.multipart(px.webhook("media.play", px.movie()))[0][:200],
        "multipart/form-data; boundary=------------------------b1d3a9c26f0e4c7e",
    ),
    "no payload part": px.multipart_parts(
        [_part("thumb", px.jpeg(2000), "image/jpeg")], boundary="b"
    ),
    "payload not JSON": px.multipart(b"{not json"),
    "payload a list": px.multipart(b'[{"event": "media.play"}]'),
    "payload not UTF-8": px.multipart(b'{"event": "\xff\xfe"}'),
    "nested multipart": px.multipart_parts(
        [b"Content-Type: multipart/mixed; boundary=inner\r\n\r\n--inner--"], boundary="outer"
    ),
    "json not an object": (b'"media.play"', "application/json"),
    "json broken": (b"{", "application/json"),
    "form without payload": (b"event=media.play", "application/x-www-form-urlencoded"),
    "text/plain": (b"payload={}", "text/plain"),
    "no content type": (b"", ""),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
async def test_malformed_bodies_are_400(stack: Stack, case: str) -> None:
    body, ctype = BAD_BODIES[case]
    headers = {"Content-Type": ctype} if ctype else {}
    response = await stack.client.post(stack.url, content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert stack.events.events == []
    # the connection and the server are fine afterwards
    body, headers = valid_body()
    assert (await stack.client.post(stack.url, content=body, headers=headers)).status_code == 200


async def test_json_and_form_bodies_from_proxies_are_taken() -> None:
    recorder = Recorder()
    payload = px.webhook("media.pause", px.episode())
    async with bare_server(recorder) as (server, client):
        url = f"http://127.0.0.1:{server.port}/plex/{SECRET}"
        assert (await client.post(url, json=payload)).status_code == 200
        assert (await client.post(url, json={"payload": payload})).status_code == 200
        assert (await client.post(url, json={"payload": json.dumps(payload)})).status_code == 200
        form = {"payload": json.dumps(payload)}
        assert (await client.post(url, data=form)).status_code == 200
    assert recorder.payloads == [payload] * 4


async def test_the_thumb_is_read_in_chunks_and_dropped() -> None:
    recorder = Recorder()
    async with bare_server(recorder) as (server, client):
        url = f"http://127.0.0.1:{server.port}/plex/{SECRET}"
        # the thumb first, then the payload: the payload is still found
        body, ctype = px.multipart_parts(
            [
                _part("thumb", px.jpeg(500_000), "image/jpeg"),
                _part("payload", json.dumps(px.webhook("media.stop", px.movie())).encode()),
            ],
            boundary="zzz",
        )
        response = await client.post(url, content=body, headers={"Content-Type": ctype})
    assert response.status_code == 200
    assert [p["event"] for p in recorder.payloads] == ["media.stop"]


def our_logs(caplog: pytest.LogCaptureFixture) -> str:
    """Everything logged but the test's own HTTP client (httpx logs the URLs it calls)."""
    client = ("httpx", "httpcore")
    records = [r for r in caplog.records if not r.name.startswith(client)]
    assert records, "nothing was logged at all"
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(r) for r in records)


async def test_a_crashing_handler_is_a_400_and_logged_without_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    def crash(payload: Mapping[str, Any]) -> str:
        raise RuntimeError("handler bug")

    async with bare_server(crash) as (server, client):
        body, headers = valid_body()
        url = f"http://127.0.0.1:{server.port}/plex/{SECRET}"
        response = await client.post(url, content=body, headers=headers)
    assert response.status_code == 400
    logs = our_logs(caplog)
    assert "handler bug" in logs and "/plex/***" in logs
    assert SECRET not in logs


# --- /status --------------------------------------------------------------------------------------


async def test_status_serves_json_to_loopback(stack: Stack) -> None:
    response = await stack.client.get(f"http://127.0.0.1:{stack.server.port}/status")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == STATUS


def test_only_loopback_addresses_are_local() -> None:
    assert _is_loopback("127.0.0.1") and _is_loopback("127.8.9.10")
    assert _is_loopback("::1") and _is_loopback("::ffff:127.0.0.1")
    for remote in ("192.168.1.10", "10.0.0.1", "::ffff:192.168.1.10", "fe80::1", "", None, "x"):
        assert not _is_loopback(remote), remote


def _outward_address() -> str | None:
    """This machine's address on its default route (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


async def test_status_is_403_for_a_non_loopback_client() -> None:
    address = _outward_address()
    if address is None:
        pytest.skip("no non-loopback address on this machine")
    server = LocalServer("0.0.0.0", 0, status=lambda: STATUS)
    async with server, httpx.AsyncClient(timeout=5.0) as client:
        far = await client.get(f"http://{address}:{server.port}/status")
        near = await client.get(f"http://127.0.0.1:{server.port}/status")
    assert far.status_code == 403 and near.status_code == 200


# --- the listener itself --------------------------------------------------------------------------


async def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = LocalServer("127.0.0.1", port)
        with pytest.raises(ServerError, match=rf"127\.0\.0\.1:{port}"):
            await server.start()
    await server.stop()  # harmless when it never started


async def test_start_stop_and_port() -> None:
    server = LocalServer("127.0.0.1", 0)
    assert server.port == 0
    await server.start()
    port = server.port
    assert port > 0
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"http://127.0.0.1:{port}/status")).status_code == 200
    await server.stop()
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/status")


async def test_the_secret_never_reaches_a_log(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    base = f"http://127.0.0.1:{stack.server.port}"
    body, headers = valid_body()
    await stack.client.post(stack.url, content=body, headers=headers)
    await stack.client.post(stack.url + "x", content=body, headers=headers)
    await stack.client.get(stack.url)
    await stack.client.post(stack.url, content=b"{", headers={"Content-Type": "application/json"})
    await stack.client.post(f"{base}/plex/{SECRET}/x", content=body, headers=headers)
    # a request line h11 refuses: its error quotes the line, and it is logged (redacted)
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.server.port)
    writer.write(f"POST /plex/{SECRET}\x01 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    async with asyncio.timeout(5):
        answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
    logs = our_logs(caplog)
    assert SECRET not in logs
    assert "/plex/***" in logs


# --- HTTP itself ---------------------------------------------------------------------------------


async def _exchange(port: int, raw: bytes, *, answers: int = 0, limit: float = 5.0) -> bytes:
    """Send raw bytes; read until `answers` status lines came, or (0) until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        got = b""
        async with asyncio.timeout(limit):
            while chunk := await reader.read(65536):
                got += chunk
                if answers and got.count(b"HTTP/1.1 ") >= answers and got.endswith(b"}"):
                    break
        return got
    finally:
        writer.close()


def _post(path: str, body: bytes, ctype: str, *extra: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: x", f"Content-Type: {ctype}", *extra]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def test_requests_share_one_connection_pipelined_or_not(stack: Stack) -> None:
    body, ctype = px.multipart(px.webhook("media.play", px.movie(view_offset=0)))
    path = f"/plex/{SECRET}"
    raw = _post(path, body, ctype) + b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = await _exchange(stack.server.port, raw, answers=2)
    assert answer.count(b"HTTP/1.1 200 OK") == 2, answer
    assert answer.endswith(json.dumps(STATUS, sort_keys=True).encode())
    assert [type(e) for e in stack.events.events] == [Playing]


async def test_head_of_status_has_no_body(stack: Stack) -> None:
    response = await stack.client.head(f"http://127.0.0.1:{stack.server.port}/status")
    assert response.status_code == 200 and response.content == b""
    assert int(response.headers["Content-Length"]) > 2
    post = await stack.client.post(f"http://127.0.0.1:{stack.server.port}/status")
    assert post.status_code == 405 and "GET" in post.headers["Allow"]


async def test_a_client_waiting_for_100_continue_gets_it_then_the_answer(stack: Stack) -> None:
    body, ctype = px.multipart(px.webhook("media.play", px.movie(view_offset=0)))
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.server.port)
    head, _, _ = _post(f"/plex/{SECRET}", b"", ctype, "Expect: 100-continue").partition(b"\r\n\r\n")
    head = head.replace(b"Content-Length: 0", f"Content-Length: {len(body)}".encode())
    writer.write(head + b"\r\n\r\n")
    await writer.drain()
    async with asyncio.timeout(5):
        interim = await reader.readuntil(b"\r\n\r\n")
        assert interim.startswith(b"HTTP/1.1 100 ")
        writer.write(body)
        await writer.drain()
        final = await reader.readuntil(b"ok\n")
    writer.close()
    assert final.startswith(b"HTTP/1.1 200 ")
    assert len(stack.events.events) == 1


async def test_a_refused_expect_100_is_answered_without_waiting_for_the_body(stack: Stack) -> None:
    body, ctype = px.multipart(px.webhook("media.play", px.movie()))
    raw = _post(f"/plex/{SECRET}x", b"", ctype, "Expect: 100-continue")
    raw = raw.replace(b"Content-Length: 0", f"Content-Length: {len(body)}".encode())
    answer = await _exchange(stack.server.port, raw)  # the server answers, then closes
    assert answer.startswith(b"HTTP/1.1 404 ") and b"connection: close" in answer.lower()


async def test_a_head_over_16_kb_is_431(stack: Stack) -> None:
    raw = b"GET /status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000  # and no end yet
    answer = await _exchange(stack.server.port, raw)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert (await stack.client.get(f"http://127.0.0.1:{stack.server.port}/status")).is_success


async def test_a_slow_or_idle_client_is_cut_off(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_module, "HEAD_TIMEOUT", 0.3)
    monkeypatch.setattr(server_module, "BODY_TIMEOUT", 0.3)
    loop = asyncio.get_running_loop()
    # a head that trickles in: the limit is for the whole head, not between bytes
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.server.port)
    started = loop.time()
    async with asyncio.timeout(5):
        for byte in b"GET /status HTTP/1.1\r\n":
            writer.write(bytes([byte]))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            if reader.at_eof():
                break
            await asyncio.sleep(0.05)  # pacing the trickle, not waiting for a result
        assert await reader.read() == b""
    assert loop.time() - started < 2.0
    writer.close()
    # a body that stops half way: 408, and the connection is closed
    body, ctype = px.multipart(px.webhook("media.play", px.movie()))
    raw = _post(f"/plex/{SECRET}", body, ctype)
    answer = await _exchange(stack.server.port, raw[: len(raw) - 10])
    assert answer.startswith(b"HTTP/1.1 408 ") and b"connection: close" in answer.lower()
    assert stack.events.events == []


async def test_a_client_hanging_up_mid_body_is_no_error(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body, ctype = px.multipart(px.webhook("media.play", px.movie()), thumb=px.jpeg(200_000))
    raw = _post(f"/plex/{SECRET}", body, ctype)
    for hang_up in ("reset", "close"):
        sock = socket.socket()
        if hang_up == "reset":  # SO_LINGER 0: close() sends a TCP RST
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.connect(("127.0.0.1", stack.server.port))
        _, writer = await asyncio.open_connection(sock=sock)
        writer.write(raw[: len(raw) // 2])
        await writer.drain()
        await wait_until(lambda: stack.server.requests_in_flight == 1, what="the body begun")
        writer.close()
        await wait_until(lambda: stack.server.requests_in_flight == 0, what="the request over")
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert stack.events.events == []
    body, headers = valid_body()
    assert (await stack.client.post(stack.url, content=body, headers=headers)).status_code == 200


async def test_connections_past_the_cap_are_closed_and_the_rest_served(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_module, "MAX_CONNECTIONS", 3)
    port = stack.server.port
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    for _, writer in held:  # each is being served (a partial head), so each takes a place
        writer.write(b"GET /st")
        await writer.drain()
    extra_reader, extra_writer = await asyncio.open_connection("127.0.0.1", port)
    async with asyncio.timeout(5):
        assert await extra_reader.read() == b""  # closed unanswered
    extra_writer.close()
    for reader, writer in held:
        writer.write(b"atus HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(5):
            assert (await reader.read()).startswith(b"HTTP/1.1 200 ")
        writer.close()
    assert (await stack.client.get(f"http://127.0.0.1:{port}/status")).is_success


async def test_stop_closes_idle_connections_at_once_and_lets_a_request_finish() -> None:
    answered: list[int] = []
    server = LocalServer("127.0.0.1", 0, status=lambda: STATUS)
    await server.start()
    port = server.port
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
    idle_writer.write(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
    await idle_writer.drain()
    async with asyncio.timeout(5):
        await idle_reader.readuntil(b'"0.1.0"}')  # answered; the connection is kept alive
    # a request whose body is still arriving when stop begins
    body, ctype = px.multipart(px.webhook("media.play", px.movie()))
    server.set_plex(SECRET, lambda payload: answered.append(1))
    busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", port)
    raw = _post(f"/plex/{SECRET}", body, ctype)
    cut = raw.index(b"\r\n\r\n") + 20  # the head and a little of the body
    busy_writer.write(raw[:cut])
    await busy_writer.drain()
    await asyncio.sleep(0.1)  # lets the server read the head; pacing only
    loop = asyncio.get_running_loop()
    started = loop.time()
    stopping = asyncio.create_task(server.stop())
    async with asyncio.timeout(5):
        assert await idle_reader.read() == b""  # the idle one closed without waiting
        assert loop.time() - started < 1.0
        busy_writer.write(raw[cut:])
        await busy_writer.drain()
        assert (await busy_reader.read()).startswith(b"HTTP/1.1 200 ")
        await stopping
    assert answered == [1]
    idle_writer.close()
    busy_writer.close()


# --- fuzz -----------------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = [
    "type",
    "librarySectionType",
    "ratingKey",
    "guid",
    "Guid",
    "viewOffset",
    "duration",
    "parentIndex",
    "index",
    "title",
    "grandparentTitle",
    "year",
    "live",
    "Media",
]


@st.composite
def payloads(draw: st.DrawFn) -> object:
    """Webhook-like objects with random values in the places that matter, or any JSON."""
    if draw(st.booleans()):
        return draw(JSON)
    event = draw(
        st.sampled_from(
            [
                "media.play",
                "media.pause",
                "media.resume",
                "media.stop",
                "media.scrobble",
                "library.new",
            ]
        )
        | st.text(max_size=12)
    )
    base = px.movie() if draw(st.booleans()) else px.episode(legacy=draw(st.booleans()))
    meta: dict[str, Any] = dict(base)
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=5)):
        meta[key] = draw(JSON)
    payload = px.webhook(
        event, meta, user=draw(st.booleans()), player_uuid=draw(st.sampled_from(["a", "b"]))
    )
    if draw(st.booleans()):
        payload[draw(st.sampled_from(["Player", "Account", "Metadata", "user"]))] = draw(JSON)
    return payload


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    kind = draw(st.sampled_from(["multipart", "parts", "json", "form", "raw"]))
    if kind == "multipart":
        payload = draw(payloads())
        raw = draw(st.booleans())
        data = draw(st.binary(max_size=64)) if raw else json.dumps(payload).encode()
        thumb = draw(st.none() | st.binary(max_size=2048))
        body, ctype = px.multipart(data, thumb=thumb)
        if draw(st.booleans()):
            cut = draw(st.integers(0, len(body)))
            body = body[:cut]
        return body, {"Content-Type": ctype}
    if kind == "parts":
        names = st.sampled_from(["payload", "thumb", "", 'x"y', "_charset_"]) | st.text(max_size=6)
        parts = draw(
            st.lists(
                st.tuples(
                    names,
                    st.binary(max_size=200),
                    st.sampled_from(
                        ["application/json", "image/jpeg", "multipart/mixed; boundary=q", ""]
                    ),
                ),
                max_size=4,
            )
        )
        boundary = draw(
            st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=80)
        )
        raw_parts = [
            f'Content-Disposition: form-data; name="{n}"\r\n'.encode("utf-8", "replace")
            + (f"Content-Type: {c}\r\n".encode() if c else b"")
            + b"\r\n"
            + content
            for n, content, c in parts
        ]
        body, ctype = px.multipart_parts(raw_parts, boundary=boundary)
        return body, {"Content-Type": ctype}
    if kind == "json":
        return json.dumps(draw(payloads())).encode(), {"Content-Type": "application/json"}
    if kind == "form":
        from urllib.parse import urlencode

        value = json.dumps(draw(payloads())) if draw(st.booleans()) else draw(st.text(max_size=30))
        return urlencode({"payload": value}).encode(), {
            "Content-Type": "application/x-www-form-urlencoded"
        }
    # any header value h11 lets out: visible ASCII, inner spaces, none at the ends
    ctype = draw(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)).strip()
    return draw(st.binary(max_size=512)), ({"Content-Type": ctype} if ctype else {})


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests())
async def test_fuzz_only_2xx_or_4xx_and_the_server_goes_on(
    stack: Stack, request: tuple[bytes, dict[str, str]]
) -> None:
    body, headers = request
    response = await stack.client.post(stack.url, content=body, headers=headers)
    assert 200 <= response.status_code < 500, (response.status_code, response.text)
    assert response.status_code in (200, 400, 413)
    event(f"answered {response.status_code}")
    ok_body, ok_headers = valid_body("library.new")
    again = await stack.client.post(stack.url, content=ok_body, headers=ok_headers)
    assert again.status_code == 200
