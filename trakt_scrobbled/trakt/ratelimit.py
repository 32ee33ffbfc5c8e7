"""Trakt's AUTHED_API_POST_LIMIT: one POST per second per user.

Trakt measures the limit at its end, where our requests arrive some unknown time after we send
them. Spacing each POST a full interval after the previous one *finished* guarantees the spacing at
Trakt's end whatever the network delay was, at the cost of one round trip per POST.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from trakt_scrobbled.clock import Clock


class PostRateLimiter:
    def __init__(self, clock: Clock, interval: float = 1.0) -> None:
        self._clock = clock
        self._interval = interval
        self._lock = asyncio.Lock()
        self._next_allowed = float("-inf")

    def defer(self, seconds: float) -> None:
        """Trakt said to wait (429 Retry-After): no POST before `seconds` from now."""
        self._next_allowed = max(self._next_allowed, self._clock.monotonic() + seconds)

    def wait_time(self) -> float:
        return max(0.0, self._next_allowed - self._clock.monotonic())

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold the right to POST: callers are serialized and spaced by the interval."""
        async with self._lock:
            while (delay := self.wait_time()) > 0:
                await self._clock.sleep(delay)
            try:
                yield
            finally:
                self._next_allowed = max(
                    self._next_allowed, self._clock.monotonic() + self._interval
                )
