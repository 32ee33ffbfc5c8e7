"""Players supervised: a crash is logged once with its traceback, the adapter restarts with a
capped backoff, and shows as failing until it has run a while. A crash is injected into each
real adapter (mpv against a real mpv, Kodi against a fake Kodi server, Plex over real webhooks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import plex_payloads as px
from tests.clocks import DrivenClock
from tests.realplayers import EventRecorder, MediaFiles, MpvLauncher, wait_until
from tests.test_player_kodi import MOVIE, FakeKodi
from trakt_scrobbled.events import Playing
from trakt_scrobbled.players import Connection, Emit, Player, Route
from trakt_scrobbled.players.kodi import KodiPlayer
from trakt_scrobbled.players.mpv import MpvPlayer
from trakt_scrobbled.players.plex import PlexPlayer
from trakt_scrobbled.server import LocalServer
from trakt_scrobbled.supervisor import Supervisor

pytestmark = [pytest.mark.timeout(60)]


class Flaky:
    """A player whose `run` fails `crashes` times, then runs until cancelled."""

    name = "flaky"

    def __init__(self, crashes: int) -> None:
        self.crashes = crashes
        self.runs = 0
        self.cancelled = False

    async def run(self, emit: Emit) -> None:
        self.runs += 1
        if self.runs <= self.crashes:
            raise RuntimeError(f"injected crash {self.runs}")
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            self.cancelled = True

    def connections(self) -> list[Connection]:
        return []

    def ignored_counts(self) -> Mapping[str, int]:
        return {}

    def routes(self) -> tuple[Route, ...]:
        return ()


async def test_backoff_doubles_is_capped_and_the_failure_clears_once_healthy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = DrivenClock()
    changes: list[str | None] = []
    player = Flaky(crashes=5)
    supervisor = Supervisor(
        clock, EventRecorder(), first_backoff=1.0, max_backoff=4.0, healthy=30.0
    )
    supervisor._on_change = lambda: changes.append(
        None if (f := supervisor.failing("flaky")) is None else f.error
    )
    caplog.set_level(logging.DEBUG, "trakt_scrobbled.supervisor")
    supervisor.start("flaky", player)
    waits = []
    for _ in range(5):
        await clock.settle()
        [due] = clock.sleeping  # the backoff before the next try
        waits.append(due - clock.mono)
        clock.advance(due - clock.mono)
    await clock.settle()
    assert waits == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert player.runs == 6
    failure = supervisor.failing("flaky")
    assert failure is not None and failure.crashes == 5
    assert failure.error == "RuntimeError: injected crash 5"
    # Logged once, with its traceback; the rest of the streak only at debug level.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert "injected crash 1" in errors[0].getMessage()
    # Running `healthy` seconds clears it.
    clock.advance(30.0)
    await clock.settle()
    assert supervisor.failing("flaky") is None
    assert changes[-1] is None and changes[0] == "RuntimeError: injected crash 1"
    await supervisor.aclose()
    assert player.cancelled and supervisor.players == {}


async def test_a_return_is_a_failure_too() -> None:
    class Quits(Flaky):
        async def run(self, emit: Emit) -> None:
            self.runs += 1

    clock = DrivenClock()
    player = Quits(0)
    supervisor = Supervisor(clock, EventRecorder())
    supervisor.start("quits", player)
    await clock.settle()
    failure = supervisor.failing("quits")
    assert failure is not None and failure.error == "it stopped by itself"
    await supervisor.aclose()


async def test_one_crashing_player_leaves_the_others_alone() -> None:
    clock = DrivenClock()
    steady, flaky = Flaky(0), Flaky(100)
    supervisor = Supervisor(clock, EventRecorder())
    supervisor.start("steady", steady)
    supervisor.start("flaky", flaky)
    for _ in range(3):
        await clock.settle()
        clock.advance(60.0)
    await clock.settle()
    assert steady.runs == 1 and not steady.cancelled
    assert supervisor.failing("steady") is None and supervisor.failing("flaky") is not None
    await supervisor.aclose()


# --- a crash injected into each real adapter ------------------------------------------------------


async def crash_then_work(
    supervisor: Supervisor, clock: DrivenClock, name: str, player: Player
) -> None:
    """Start `player` (rigged to crash once), see it fail, then let it restart."""
    supervisor.start(name, player)
    await wait_until(lambda: supervisor.failing(name) is not None, what=f"{name} failing")
    failure = supervisor.failing(name)
    assert failure is not None and "injected" in failure.error
    await clock.settle()
    clock.advance(1.0)  # the first backoff


async def test_mpv_adapter_crash_is_restarted(
    media: MediaFiles,
    mpv_launcher: MpvLauncher,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mpv = mpv_launcher.start()
    player = MpvPlayer([str(mpv.socket_path)])
    rescan = MpvPlayer._rescan
    calls = 0

    def crashing(self: MpvPlayer, *args: Any) -> set[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("injected: mpv rescan blew up")
        return rescan(self, *args)

    monkeypatch.setattr(MpvPlayer, "_rescan", crashing)
    clock, events = DrivenClock(), EventRecorder()
    supervisor = Supervisor(clock, events)
    try:
        await crash_then_work(supervisor, clock, "mpv", player)
        mpv.control.loadfile(media.movie)
        await events.wait_for(Playing, timeout=15)
    finally:
        await supervisor.aclose()
    assert [r.exc_info is not None for r in caplog.records if r.levelno >= logging.ERROR] == [True]


async def test_kodi_adapter_crash_is_restarted(monkeypatch: pytest.MonkeyPatch) -> None:
    from trakt_scrobbled.players import kodi

    fake = FakeKodi()
    await fake.start()
    fake.playing(MOVIE)
    serve = kodi._Link.serve
    calls = 0

    async def crashing(self: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("injected: kodi link blew up")
        await serve(self)

    monkeypatch.setattr(kodi._Link, "serve", crashing)
    clock, events = DrivenClock(), EventRecorder()
    supervisor = Supervisor(clock, events)
    player = KodiPlayer("127.0.0.1", fake.port, reconnect=(0.05, 0.2))
    try:
        await crash_then_work(supervisor, clock, "kodi", player)
        await events.wait_for(Playing, timeout=15)  # found by the poll on connect
    finally:
        await supervisor.aclose()
        await fake.close()


async def test_plex_adapter_crash_is_restarted(monkeypatch: pytest.MonkeyPatch) -> None:
    player = PlexPlayer((), secret=px.SECRET)
    real = PlexPlayer.__dict__["_lookups"]
    calls = 0

    def crashing(self: PlexPlayer) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("injected: plex start blew up")
        return bool(real.fget(self))

    monkeypatch.setattr(PlexPlayer, "_lookups", property(crashing))
    clock, events = DrivenClock(), EventRecorder()
    supervisor = Supervisor(clock, events)
    [route] = player.routes()
    server = LocalServer("127.0.0.1", 0, plex_secret=route.secret, on_webhook=route.handler)
    async with server, httpx.AsyncClient(timeout=10.0) as client:
        try:
            await crash_then_work(supervisor, clock, "plex", player)
            url = f"http://127.0.0.1:{server.port}/plex/{px.SECRET}"

            async def delivered() -> bool:
                body, ctype = px.multipart(px.webhook("media.play", px.movie(view_offset=0)))
                response = await client.post(url, content=body, headers={"Content-Type": ctype})
                assert response.status_code == 200
                return bool(events.events)

            for _ in range(50):  # a webhook before the restart finds the player not running
                if await delivered():
                    break
                await asyncio.sleep(0.05)
            await events.wait_for(Playing)
        finally:
            await supervisor.aclose()


def test_supervised_players_satisfy_the_protocol(tmp_path: Path) -> None:
    players: list[Player] = [
        MpvPlayer([str(tmp_path / "mpv.sock")]),
        KodiPlayer("127.0.0.1", 9),
        PlexPlayer((), secret="s"),
        Flaky(0),
    ]
    assert [p.routes() != () for p in players] == [False, False, True, False]
