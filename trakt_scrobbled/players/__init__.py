"""Player adapters: one module per player, each satisfying `Player`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from trakt_scrobbled.events import MediaInfo, PlayerEvent

Emit = Callable[[PlayerEvent], None]
"""Hands an event to the app. Called on the event loop thread only; never blocks."""

WebhookHandler = Callable[[Mapping[str, Any]], object]
"""Takes one webhook's payload object; returns what it did, for a debug log line."""

log = logging.getLogger(__name__)


def emit_safely(emit: Emit, event: PlayerEvent) -> None:
    """Hand `event` over; a failure downstream is logged and never stops the adapter."""
    try:
        emit(event)
    except Exception:
        log.exception("%s: handling %s failed", event.source, type(event).__name__)


@dataclass(frozen=True, slots=True)
class Connection:
    """One connected player instance, for `status`."""

    source: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Route:
    """A webhook entry a player offers: the listener serves `POST /{name}/{secret}` with it."""

    name: str
    secret: str
    handler: WebhookHandler


class Player(Protocol):
    """A player adapter.

    `run` watches the player (or players: mpv may have several sockets) until cancelled,
    reconnecting by itself; it reports what happens through `emit`. A player that is told
    rather than asking (Plex webhooks) offers `routes` for the listener to mount, and its `run`
    only holds what the handler needs until cancelled. Cancelling `run` detaches cleanly; a
    session that was playing gets an `Ended` event with reason GONE only when the player really
    went away, not when the daemon shuts down. An exception out of `run` is a crash: the
    supervisor logs it and starts `run` again.
    """

    name: str

    async def run(self, emit: Emit) -> None: ...

    def connections(self) -> list[Connection]:
        """The player instances connected right now."""
        ...

    def ignored_counts(self) -> Mapping[str, int]:
        """Events ignored since start, by reason (for `status`); empty when none are."""
        ...

    def routes(self) -> tuple[Route, ...]:
        """The webhook routes the listener must mount for this player; none for most."""
        ...


def doing_label(media: MediaInfo, *, paused: bool) -> str:
    """What a media-server client is doing, as `status` lists it: `playing Show S01E02`."""
    label = media.show_title or media.title or "?"
    if media.episode is not None:
        label += f" S{media.season or 0:02d}E{media.episode:02d}"
    return f"{'paused' if paused else 'playing'} {label}"
