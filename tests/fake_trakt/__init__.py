"""A stateful fake of the Trakt API for tests, served over real HTTP on 127.0.0.1.

Use `FakeTrakt` directly (`with FakeTrakt(...) as fake:`) or the `fake_trakt` fixture;
`python -m tests.fake_trakt --port N` serves one in the foreground.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .catalogue import Episode, Item, Movie, Show, ShowEpisode
from .faults import FaultKind
from .server import FakeTrakt, RecordedRequest
from .state import (
    DeviceCode,
    DeviceStatus,
    HistoryAction,
    HistoryEntry,
    PlaybackEntry,
    TokenPair,
    Watching,
)

__all__ = [
    "DeviceCode",
    "DeviceStatus",
    "Episode",
    "FakeTrakt",
    "FaultKind",
    "HistoryAction",
    "HistoryEntry",
    "Item",
    "Movie",
    "PlaybackEntry",
    "RecordedRequest",
    "Show",
    "ShowEpisode",
    "TokenPair",
    "Watching",
    "fake_trakt",
]


@pytest.fixture
def fake_trakt() -> Iterator[FakeTrakt]:
    """A running fake with the default config (client "test-client-id" / "test-secret")."""
    with FakeTrakt() as fake:
        yield fake
