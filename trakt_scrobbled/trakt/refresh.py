"""Refreshing the login ahead of its expiry, so it never lapses unnoticed.

Scheduled on the injected clock (one master of time): tests drive it by moving the clock.
The wait is cut into slices of at most `CHECK_EVERY`, so a suspended machine whose wall clock
jumped ahead refreshes soon after it wakes rather than when a monotonic timer would fire.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from trakt_scrobbled.clock import Clock
from trakt_scrobbled.trakt.auth import Auth, AuthState
from trakt_scrobbled.trakt.client import TraktClient

CHECK_EVERY = 3600.0
"""Longest single wait, in seconds, before the wall clock is looked at again."""


class TokenRefresher:
    """Refreshes the token ahead of its expiry; re-arms after each change of the login."""

    def __init__(
        self,
        client: Callable[[], TraktClient],
        auth: Auth,
        clock: Clock,
        *,
        margin: float = 86400.0,
        retry: float = 300.0,
    ) -> None:
        self._client = client
        self._auth = auth
        self._clock = clock
        self._margin = margin
        self._retry = retry

    def due(self) -> float | None:
        """When (wall clock) the next refresh is due; None without a login that expires."""
        expires_at = self._auth.expires_at
        if expires_at is None or self._auth.state is not AuthState.LOGGED_IN:
            return None
        now = self._clock.time()
        left = expires_at - now
        # A day ahead, or halfway through a short-lived token.
        return now + max(0.0, left - min(self._margin, left / 2))

    async def follow(self) -> None:
        """Refresh when due; re-arm whenever the login changes (new login, 401, logout)."""
        while True:
            generation = self._auth.generation
            when = self.due()  # armed once per login: the margin is taken from its expiry
            while True:
                if when is None:
                    await self._auth.wait_changed(generation)
                    break
                wait = when - self._clock.time()
                if wait > 0:
                    if await self._changed_within(generation, min(wait, CHECK_EVERY)):
                        break
                    continue
                if await self._auth.refresh(self._client(), rejected=None):
                    break  # a new token: armed again for it
                if self._auth.state is not AuthState.LOGGED_IN:
                    break
                when = self._clock.time() + self._retry

    async def _changed_within(self, generation: int, seconds: float) -> bool:
        """Wait `seconds` on the clock; True if the login changed meanwhile."""
        changed = asyncio.ensure_future(self._auth.wait_changed(generation))
        sleep = asyncio.ensure_future(self._clock.sleep(seconds))
        try:
            await asyncio.wait({changed, sleep}, return_when=asyncio.FIRST_COMPLETED)
            return changed.done()
        finally:
            for task in (changed, sleep):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
