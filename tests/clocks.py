"""A clock tests move by hand, so time logic is tested without sleeping."""

from __future__ import annotations

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
