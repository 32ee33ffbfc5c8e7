"""Runs the player adapters and keeps them running.

An adapter's `run` only returns when cancelled; an exception out of it (or a return) is a crash.
A crash is logged once with its traceback, the adapter is started again after a capped,
doubling backoff, and it shows as failing (in `status`, `doctor` and the sd_notify STATUS line)
until it has run for `healthy` seconds. A crash in one player never touches the others.
Time is the injected clock's: tests drive the backoff without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from trakt_scrobbled.clock import Clock
from trakt_scrobbled.players import Emit, Player

log = logging.getLogger(__name__)

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 60.0
HEALTHY = 60.0
"""Seconds a restarted adapter must run before it no longer counts as failing."""


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a player is failing, for `status`."""

    error: str
    crashes: int
    """Crashes in a row, since it last ran `HEALTHY` seconds."""


class Supervisor:
    """One supervised task per player; `start`, `stop`, `aclose` are called on the loop."""

    def __init__(
        self,
        clock: Clock,
        emit: Emit,
        *,
        on_change: Callable[[], None] = lambda: None,
        first_backoff: float = FIRST_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
        healthy: float = HEALTHY,
    ) -> None:
        self._clock = clock
        self._emit = emit
        self._on_change = on_change
        self._first = first_backoff
        self._max = max_backoff
        self._healthy = healthy
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._players: dict[str, Player] = {}
        self._failing: dict[str, Failure] = {}

    @property
    def players(self) -> dict[str, Player]:
        """The players running (or restarting), by name, in the order they started."""
        return dict(self._players)

    def failing(self, name: str) -> Failure | None:
        return self._failing.get(name)

    def start(self, name: str, player: Player) -> None:
        self._players[name] = player
        self._tasks[name] = asyncio.get_running_loop().create_task(
            self._supervise(name, player), name=f"player-{name}"
        )

    async def stop(self, name: str) -> Player | None:
        """Cancel a player's task (it detaches cleanly) and forget it."""
        task = self._tasks.pop(name, None)
        player = self._players.pop(name, None)
        if self._failing.pop(name, None) is not None:
            self._on_change()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return player

    async def aclose(self) -> None:
        for name in reversed(list(self._tasks)):
            await self.stop(name)

    async def _supervise(self, name: str, player: Player) -> None:
        delay = self._first
        while True:
            error, exc = await self._run_once(name, player)
            failure = self._failing.get(name)
            crashes = 1 if failure is None else failure.crashes + 1
            self._failing[name] = Failure(error, crashes)
            if crashes == 1:  # the first of a streak: said once, with the traceback
                log.error(
                    "%s: the player adapter failed (%s); restarting it in %.0f s",
                    name,
                    error,
                    delay,
                    exc_info=exc,
                )
            else:
                delay = min(delay * 2, self._max)
                log.debug("%s: failed again (%d in a row): %s", name, crashes, error)
            self._on_change()
            await self._clock.sleep(delay)
            if name not in self._failing:
                delay = self._first

    async def _run_once(self, name: str, player: Player) -> tuple[str, BaseException | None]:
        """Run the adapter until it fails; say why. Clears the failure once it is healthy."""
        loop = asyncio.get_running_loop()
        task = loop.create_task(player.run(self._emit), name=f"run-{name}")
        healthy = loop.create_task(self._clock.sleep(self._healthy))
        try:
            done, _ = await asyncio.wait({task, healthy}, return_when=asyncio.FIRST_COMPLETED)
            if task not in done and name in self._failing:
                del self._failing[name]
                log.info("%s: the player adapter runs again", name)
                self._on_change()
            await asyncio.wait({task})
        finally:
            healthy.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if task.cancelled():
            return "cancelled from within", None
        err = task.exception()
        if err is None:
            return "it stopped by itself", None
        return (f"{type(err).__name__}: {err}" if str(err) else type(err).__name__), err
