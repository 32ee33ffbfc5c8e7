"""The token refresh runs on the injected clock: driven here by moving time, nothing sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.clocks import DrivenClock
from tests.daemon import CLIENT_ID, CLIENT_SECRET
from tests.fake_trakt import FakeTrakt
from trakt_scrobbled.trakt.auth import Auth, AuthState, Token, TokenStore
from trakt_scrobbled.trakt.client import TraktClient
from trakt_scrobbled.trakt.ratelimit import PostRateLimiter
from trakt_scrobbled.trakt.refresh import CHECK_EVERY, TokenRefresher

DAY = 86400.0


@pytest.fixture
def fake() -> Iterator[FakeTrakt]:
    with FakeTrakt(post_interval=0) as fake:
        yield fake


async def until(condition: Callable[[], bool], what: str) -> None:
    """Bounded wait for `what`: the fake answers from its own thread."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 - no event exists for the fake's request log
            await asyncio.sleep(0.01)


async def test_refreshed_ahead_of_expiry_when_the_clock_says_so(
    tmp_path: Path, fake: FakeTrakt
) -> None:
    clock = DrivenClock()
    store = TokenStore(tmp_path / "token.json")
    pair = fake.issue_token()
    # Expires in 3 days on the test's clock: due a day ahead, in 2 days.
    store.save(Token(pair.access_token, pair.refresh_token, clock.wall + 3 * DAY))
    auth = Auth(store, clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    client = TraktClient(fake.url, CLIENT_ID, PostRateLimiter(clock, 0.0), token=auth.access_token)
    refresher = TokenRefresher(lambda: client, auth, clock)
    target = clock.wall + 2 * DAY
    assert refresher.due() == pytest.approx(target)
    task = asyncio.create_task(refresher.follow())
    try:
        # Time moves in the slices the refresher waits in; nothing happens before it is due.
        while clock.wall < target:
            await clock.settle()
            [due] = clock.sleeping
            assert due - clock.mono <= CHECK_EVERY
            clock.advance(due - clock.mono)
            assert fake.requests("/oauth/token") == []
        await clock.settle()
        await until(lambda: len(fake.requests("/oauth/token")) == 1, "the refresh")
        await until(lambda: auth.access_token() != pair.access_token, "the new token")
        assert auth.state is AuthState.LOGGED_IN
        # Re-armed for the new token, on the same clock.
        await clock.settle()
        assert clock.sleeping and refresher.due() is not None
        assert refresher.due() > clock.wall  # type: ignore[operator]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.aclose()


async def test_a_logout_disarms_and_a_login_arms(tmp_path: Path, fake: FakeTrakt) -> None:
    clock = DrivenClock()
    store = TokenStore(tmp_path / "token.json")
    auth = Auth(store, clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    client = TraktClient(fake.url, CLIENT_ID, PostRateLimiter(clock, 0.0), token=auth.access_token)
    refresher = TokenRefresher(lambda: client, auth, clock)
    task = asyncio.create_task(refresher.follow())
    try:
        await clock.settle()
        assert refresher.due() is None and clock.sleeping == []  # nothing to refresh: no timer
        pair = fake.issue_token()
        auth.set_token(Token(pair.access_token, pair.refresh_token, clock.wall + 2 * DAY))
        await clock.settle()
        assert clock.sleeping == [clock.mono + CHECK_EVERY]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.aclose()
