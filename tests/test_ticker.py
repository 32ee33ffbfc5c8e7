"""The progress ticker: calls while on, and no timer at all while off."""

from __future__ import annotations

import asyncio

from trakt_scrobbled.players.ticker import Ticker


class SteppedClock:
    """Sleeps end only when the test moves time past them; `sleepers` shows pending timers."""

    def __init__(self) -> None:
        self.mono = 100.0
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        return self.mono

    def time(self) -> float:
        return 1_700_000_000.0 + self.mono

    async def sleep(self, seconds: float) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self.mono + seconds, waiter)
        self.sleepers.append(entry)
        try:
            await waiter
        finally:
            self.sleepers.remove(entry)

    async def advance(self, seconds: float) -> None:
        self.mono += seconds
        for due, waiter in list(self.sleepers):
            if due <= self.mono and not waiter.done():
                waiter.set_result(None)
        await settle()


async def settle() -> None:
    """Let every ready task run (no time passes)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_calls_every_interval_only_while_on() -> None:
    clock = SteppedClock()
    calls: list[float] = []
    ticker = Ticker(clock, 15.0, lambda: calls.append(clock.mono), "test progress")
    await settle()
    assert not ticker.running and clock.sleepers == []

    ticker.switch(True)
    await settle()
    await clock.advance(14.9)
    assert calls == []
    await clock.advance(0.1)
    await clock.advance(15.0)
    assert calls == [115.0, 130.0]

    ticker.switch(False)
    await settle()
    assert not ticker.running and clock.sleepers == []  # no timer left to wake the daemon
    await clock.advance(60.0)
    assert calls == [115.0, 130.0]

    ticker.switch(True)  # the first call an interval after switching on again
    ticker.switch(True)  # the same state again changes nothing
    await settle()
    assert len(clock.sleepers) == 1
    await clock.advance(15.0)
    assert calls == [115.0, 130.0, 205.0]
    await ticker.close()
    assert not ticker.running and clock.sleepers == []
    await ticker.close()  # twice is harmless
