"""A clock tests move by hand, so time logic is tested without sleeping."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass
class ManualClock:
    mono: float = 1000.0
    wall: float = 1_700_000_000.0

    def monotonic(self) -> float:
        return self.mono

    def time(self) -> float:
        return self.wall

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


class DrivenClock(ManualClock):
    """A clock whose `sleep` waits until the test moves time past its end.

    `ManualClock.sleep` jumps time forward for everyone; here sleepers wait their turn, so a
    test drives timers (backoffs, deadlines, a token refresh) by `advance` and nothing sleeps.
    """

    def __init__(self, mono: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        super().__init__(mono, wall)
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.mono + max(0.0, seconds), future))
        try:
            await future
        finally:
            self._sleepers = [(t, f) for t, f in self._sleepers if f is not future]

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds
        for due, future in self._sleepers:
            if due <= self.mono and not future.done():
                future.set_result(None)

    @property
    def sleeping(self) -> list[float]:
        """When each pending sleep ends (monotonic), soonest first."""
        return sorted(t for t, f in self._sleepers if not f.done())

    async def settle(self) -> None:
        """Let every task woken so far run until it waits again."""
        for _ in range(20):
            await asyncio.sleep(0)
