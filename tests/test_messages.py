"""Messages a person acts on: what a reload changed (secrets masked), where Trakt could not be
reached and why."""

from __future__ import annotations

import dataclasses

import pytest

from tests.daemon import free_port
from trakt_scrobbled.changes import describe_changes
from trakt_scrobbled.clock import SystemClock
from trakt_scrobbled.config import Config, MpvConfig, PlexConfig, ScrobbleConfig, TraktConfig
from trakt_scrobbled.trakt.client import TraktClient
from trakt_scrobbled.trakt.errors import TransportError
from trakt_scrobbled.trakt.ratelimit import PostRateLimiter

SECRET = "s3cr3t-value-0123456789"


def test_each_changed_key_with_old_and_new_values() -> None:
    old = Config()
    new = dataclasses.replace(
        old,
        scrobble=ScrobbleConfig(watched_threshold=90),
        mpv=MpvConfig(sockets=("/tmp/mpv.sock",)),
    )
    assert describe_changes(old, new) == [
        "scrobble.watched_threshold: 80 → 90",
        "mpv.sockets: [] → ['/tmp/mpv.sock']",
    ]
    assert describe_changes(old, old) == []


@pytest.mark.parametrize(
    ("before", "after", "said"),
    [
        ("", SECRET, "set (hidden)"),
        (SECRET, SECRET + "x", "changed (hidden)"),
        (SECRET, "", "cleared"),
    ],
)
def test_secrets_are_never_shown(before: str, after: str, said: str) -> None:
    old = Config(
        trakt=TraktConfig(client_secret=before), plex=PlexConfig(secret=before, token=before)
    )
    new = Config(trakt=TraktConfig(client_secret=after), plex=PlexConfig(secret=after, token=after))
    lines = describe_changes(old, new)
    assert f"trakt.client_secret: {said}" in lines and f"plex.secret: {said}" in lines
    assert f"plex.token: {said}" in lines
    assert not any(SECRET in line for line in lines)


async def test_an_unreachable_trakt_is_named_with_the_reason() -> None:
    port = free_port()
    async with TraktClient(
        f"http://127.0.0.1:{port}", "id", PostRateLimiter(SystemClock())
    ) as client:
        with pytest.raises(TransportError) as info:
            await client.get("/search/movie", {"query": "x"})
    assert str(info.value) == (
        "could not reach Trakt at 127.0.0.1 for GET /search/movie: Connection refused"
    )
