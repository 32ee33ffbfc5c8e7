"""The Trakt HTTP client: required headers, one connection pool, errors translated to types."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from trakt_scrobbled import __version__
from trakt_scrobbled.trakt.errors import (
    Conflict,
    TraktError,
    TransportError,
    UnreadableAnswer,
    error_for_status,
    transport_reason,
)
from trakt_scrobbled.trakt.ratelimit import PostRateLimiter

log = logging.getLogger(__name__)

TokenProvider = Callable[[], str | None]

MAX_RETRY_AFTER = 3600.0
"""Seconds: a longer Retry-After (a misconfigured edge, a hostile proxy) is waited this long."""


@dataclass(frozen=True, slots=True)
class TraktResponse:
    status: int
    data: Any
    headers: Mapping[str, str]


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = max(0.0, float(raw))
    except ValueError:
        return None
    if seconds != seconds:  # NaN
        return None
    if seconds > MAX_RETRY_AFTER:
        log.warning(
            "Trakt asked to wait %.0f s before the next call; waiting %.0f s at most",
            seconds,
            MAX_RETRY_AFTER,
        )
        return MAX_RETRY_AFTER
    return seconds


class TraktClient:
    """Talks to `api_url` with the headers every Trakt call needs.

    POSTs go through `limiter` so that no two are closer than Trakt allows, whoever sends them.
    Every answer Trakt really gave (2xx, 409) is news that it is reachable: `on_success`
    listeners hear of it, so that whoever waits out an outage can stop waiting.
    """

    def __init__(
        self,
        api_url: str,
        client_id: str,
        limiter: PostRateLimiter,
        *,
        token: TokenProvider = lambda: None,
        timeout: float = 20.0,
    ) -> None:
        self._limiter = limiter
        self._token = token
        self._success_listeners: list[Callable[[], None]] = []
        self._http = httpx.AsyncClient(
            base_url=api_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={
                "Content-Type": "application/json",
                "trakt-api-key": client_id,
                "trakt-api-version": "2",
                "User-Agent": f"trakt-scrobbled/{__version__}",
            },
            follow_redirects=False,
        )

    def on_success(self, listener: Callable[[], None]) -> None:
        """Call `listener` (on the loop, synchronously) after each call Trakt answered."""
        self._success_listeners.append(listener)

    def _succeeded(self) -> None:
        for listener in list(self._success_listeners):
            try:
                listener()
            except Exception:
                log.exception("a Trakt success listener failed")

    async def __aenter__(self) -> TraktClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get(
        self, path: str, params: Mapping[str, str | int] | None = None, *, auth: bool = False
    ) -> TraktResponse:
        return await self._request("GET", path, params=params, auth=auth)

    async def post(self, path: str, body: Mapping[str, Any], *, auth: bool = True) -> TraktResponse:
        async with self._limiter.slot():
            try:
                return await self._request("POST", path, body=body, auth=auth)
            except TraktError as err:
                if err.status == 429:
                    retry = getattr(err, "retry_after", None)
                    self._limiter.defer(retry if retry is not None else 30.0)
                raise

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Mapping[str, Any] | None = None,
        auth: bool,
    ) -> TraktResponse:
        headers: dict[str, str] = {}
        if auth:
            token = self._token()
            if token:
                headers["Authorization"] = f"Bearer {token}"
        try:
            resp = await self._http.request(
                method,
                path,
                params=params,
                content=None if body is None else json.dumps(body).encode(),
                headers=headers,
            )
        except httpx.TimeoutException as err:
            raise TransportError(f"Trakt did not answer {method} {path} in time") from err
        except httpx.TransportError as err:
            raise TransportError(
                f"could not reach Trakt at {self._http.base_url.host} for {method} {path}: "
                f"{transport_reason(err)}"
            ) from err
        if resp.status_code >= 300:
            error = error_for_status(
                resp.status_code,
                path=path,
                detail=_error_detail(resp),
                retry_after=_retry_after(resp.headers),
            )
            if isinstance(error, Conflict):
                self._succeeded()
            raise error
        data: Any = None
        if resp.content:
            try:
                data = resp.json()
            except ValueError as err:
                # A captive portal, a proxy page, a body cut short: whether Trakt saw the call
                # is unknown, so it is in doubt (like a lost answer), never a refusal.
                raise UnreadableAnswer(
                    f"the answer to {method} {path} was not Trakt's JSON "
                    "(a captive portal or proxy?); it may not have reached Trakt",
                    status=resp.status_code,
                ) from err
        self._succeeded()
        return TraktResponse(resp.status_code, data, resp.headers)


def _error_detail(resp: httpx.Response) -> str:
    """A short, secret-free description of an error body (Trakt's `error` field, if any)."""
    try:
        data = resp.json()
    except ValueError:
        return ""
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, str) and len(err) <= 64:
            return err
    return ""
