"""Refreshing the login ahead of its expiry, on the scheduler, so it never lapses unnoticed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from trakt_scrobbled.clock import Clock
from trakt_scrobbled.trakt.auth import Auth, AuthState
from trakt_scrobbled.trakt.client import TraktClient


class TokenRefresher:
    """Refreshes the token ahead of its expiry, on the scheduler; re-arms after each change."""

    def __init__(
        self,
        scheduler: AsyncIOScheduler,
        client: Callable[[], TraktClient],
        auth: Auth,
        clock: Clock,
        *,
        margin: float = 86400.0,
        retry: float = 300.0,
    ) -> None:
        self._scheduler = scheduler
        self._client = client
        self._auth = auth
        self._clock = clock
        self._margin = margin
        self._retry = retry

    def arm(self) -> None:
        expires_at = self._auth.expires_at
        if expires_at is None:
            if self._scheduler.get_job("refresh") is not None:
                self._scheduler.remove_job("refresh")
            return
        now = self._clock.time()
        left = expires_at - now
        # A day ahead, or halfway through a short-lived token.
        self._schedule(now + max(0.0, left - min(self._margin, left / 2)))

    def _schedule(self, when: float) -> None:
        self._scheduler.add_job(
            self._refresh,
            "date",
            run_date=datetime.fromtimestamp(when, tz=UTC),
            id="refresh",
            replace_existing=True,
            misfire_grace_time=None,
        )

    async def _refresh(self) -> None:
        if await self._auth.refresh(self._client(), rejected=None):
            return  # the change re-arms through follow()
        if self._auth.state is AuthState.LOGGED_IN:
            self._schedule(self._clock.time() + self._retry)

    async def follow(self) -> None:
        """Re-arm whenever the login changes (new login, refresh after a 401, logout)."""
        while True:
            generation = self._auth.generation
            self.arm()
            await self._auth.wait_changed(generation)
