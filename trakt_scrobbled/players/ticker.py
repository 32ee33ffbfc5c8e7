"""A progress timer that exists only while a player plays.

The mpv and Kodi adapters sample the position now and then while playing (mpv's own time-pos
fires every frame; Kodi pushes none). A timer that kept running while the player sits idle or
paused would wake the daemon for nothing: this one is started on play and dropped on pause.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from trakt_scrobbled.clock import Clock


class Ticker:
    """Calls `due` every `interval` seconds while switched on; no timer at all while off."""

    def __init__(self, clock: Clock, interval: float, due: Callable[[], None], name: str) -> None:
        self._clock = clock
        self._interval = interval
        self._due = due
        self._name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def switch(self, on: bool) -> None:
        """Start (the first call an interval from now) or stop; the same state again is a no-op."""
        if on and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=self._name)
        elif not on and self._task is not None:
            self._task.cancel()
            self._task = None

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            await self._clock.sleep(self._interval)
            self._due()
