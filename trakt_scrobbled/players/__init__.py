"""Player adapters: one module per player, each satisfying `Player`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from trakt_scrobbled.events import PlayerEvent

Emit = Callable[[PlayerEvent], None]
"""Hands an event to the app. Called on the event loop thread only; never blocks."""

log = logging.getLogger(__name__)


def emit_safely(emit: Emit, event: PlayerEvent) -> None:
    """Hand `event` over; a failure downstream is logged and never stops the adapter."""
    try:
        emit(event)
    except Exception:
        log.exception("%s: handling %s failed", event.source, event.kind)


@dataclass(frozen=True, slots=True)
class Connection:
    """One connected player instance, for `status`."""

    source: str
    detail: str = ""


class Player(Protocol):
    """A player adapter.

    `run` watches the player (or players: mpv may have several sockets) until cancelled,
    reconnecting by itself; it reports what happens through `emit`. Cancelling `run`
    detaches cleanly; a session that was playing gets a STOP event with reason GONE
    only when the player really went away, not when the daemon shuts down.
    """

    name: str

    async def run(self, emit: Emit) -> None: ...

    def connections(self) -> list[Connection]:
        """The player instances connected right now."""
        ...
