"""A hostile peer on an mpv IPC socket: bad lines, huge lines, connections that keep dropping.

A real mpv never sends these, so the peer is a small fake speaking mpv's JSON IPC (replies to
`observe_property` and `get_property`, events on demand) on a real unix socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.realplayers import running, wait_until
from trakt_scrobbled.clock import SystemClock
from trakt_scrobbled.events import Paused, Playing
from trakt_scrobbled.players.mpv import MAX_LINE, MpvPlayer

PROPERTIES: dict[str, Any] = {
    "path": "/m/Heat.1995.mkv",
    "working-directory": "/",
    "media-title": "Heat",
    "duration": 600.0,
    "time-pos": 60.0,
    "pause": False,
    "speed": 1.0,
    "eof-reached": False,
}
PROPERTIES["property-list"] = list(PROPERTIES)
PROPERTIES["command-list"] = [{"name": n} for n in ("get_property", "observe_property")]


class FakeMpv:
    """mpv's IPC as far as the adapter uses it; `hang_up_after` closes each connection."""

    def __init__(self, path: Path, *, hang_up_after: float | None = None) -> None:
        self.path = path
        self.hang_up_after = hang_up_after
        self.connections = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> FakeMpv:
        self._server = await asyncio.start_unix_server(self._serve, str(self.path))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await self._server.wait_closed()

    async def send(self, data: bytes) -> None:
        writer = self._writers[-1]
        writer.write(data)
        await writer.drain()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            async with asyncio.timeout(self.hang_up_after):
                while line := await reader.readline():
                    writer.write(json.dumps(_reply(json.loads(line))).encode() + b"\n")
                    await writer.drain()
        except (TimeoutError, OSError, ValueError):
            pass
        finally:
            writer.close()


def _reply(request: dict[str, Any]) -> dict[str, Any]:
    command = request.get("command") or []
    answer: dict[str, Any] = {"request_id": request.get("request_id", 0), "error": "success"}
    if command and command[0] == "get_property":
        if command[1] in PROPERTIES:
            answer["data"] = PROPERTIES[command[1]]
        else:
            answer["error"] = "property unavailable"
    return answer


@contextlib.asynccontextmanager
async def fake_mpv(sock_dir: Path, **kw: Any) -> AsyncIterator[FakeMpv]:
    async with FakeMpv(sock_dir / "mpv.sock", **kw) as fake:
        yield fake


async def test_bad_lines_do_not_cost_a_reconnect_nor_a_stop_and_start(
    sock_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trakt_scrobbled.players.mpv")
    async with fake_mpv(sock_dir) as fake:
        player = MpvPlayer([str(fake.path)], reconnect=(0.05, 0.4))
        async with running(player) as rec:
            await rec.wait_for_event(lambda e: isinstance(e, Playing))
            await fake.send(b'this is not JSON\n[1, 2]\n{"half": \n')
            await fake.send(b"x" * (MAX_LINE + 65536))  # one line past the cap, no newline yet
            await fake.send(b"still the same huge line\n")
            pause = {"event": "property-change", "id": 1, "name": "pause", "data": True}
            await fake.send(json.dumps(pause).encode() + b"\n")
            await rec.wait_for_event(lambda e: isinstance(e, Paused))
            assert fake.connections == 1  # the reader survived every bad line
            assert [type(e) for e in rec.events] == [Playing, Paused]  # no STOP, no second PLAY
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("not JSON" in w for w in warnings) == 1  # said once, not per line
    assert sum("over" in w for w in warnings) == 1


class RecordingClock(SystemClock):
    """Real time, remembering each sleep (the reconnect backoff schedule)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await super().sleep(seconds)


async def test_a_connection_that_keeps_dropping_backs_off_growing(sock_dir: Path) -> None:
    clock = RecordingClock()
    async with fake_mpv(sock_dir, hang_up_after=0.2) as fake:
        player = MpvPlayer([str(fake.path)], clock=clock, reconnect=(0.05, 0.4))
        async with running(player):
            await wait_until(
                lambda: fake.connections >= 5, what="five short connections", timeout=15
            )
    backoff = [s for s in clock.sleeps if s <= 0.4][:4]
    assert backoff == [0.05, 0.1, 0.2, 0.4]  # growing to the cap, not a reconnect at once
