"""Trakt's device-code login: show a short code, poll until the user approved it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from trakt_scrobbled.clock import Clock
from trakt_scrobbled.trakt.auth import Token
from trakt_scrobbled.trakt.client import TraktClient
from trakt_scrobbled.trakt.errors import RateLimited, TraktError, TransportError

log = logging.getLogger(__name__)


class LoginFailed(Exception):
    """The login cannot go on; the message tells the user what happened.

    `again` is True when a new login (a new code) may succeed; what to say about it differs
    between the terminal ("run the login again") and the daemon (which asks for a new code).
    """

    def __init__(self, message: str, *, again: bool = False) -> None:
        super().__init__(message)
        self.again = again


class LoginExpired(LoginFailed):
    """The code ran out before it was approved: a new one is needed."""

    def __init__(self, message: str = "the code expired before it was approved") -> None:
        super().__init__(message, again=True)


@dataclass(frozen=True, slots=True)
class DeviceCode:
    device_code: str = field(repr=False)
    user_code: str
    verification_url: str
    expires_in: float
    interval: float

    @property
    def activate_url(self) -> str:
        """The link that pre-fills the code (what the QR code holds)."""
        return f"{self.verification_url.rstrip('/')}/{self.user_code}"


async def request_code(client: TraktClient, client_id: str) -> DeviceCode:
    try:
        resp = await client.post("/oauth/device/code", {"client_id": client_id}, auth=False)
    except TraktError as err:
        raise LoginFailed(f"could not start the login: {err}") from err
    data = resp.data
    try:
        return DeviceCode(
            device_code=str(data["device_code"]),
            user_code=str(data["user_code"]),
            verification_url=str(data.get("verification_url") or "https://trakt.tv/activate"),
            expires_in=float(data.get("expires_in", 600)),
            interval=max(1.0, float(data.get("interval", 5))),
        )
    except (TypeError, KeyError, ValueError) as err:
        raise LoginFailed("Trakt's answer to the login request was not understood") from err


_FINAL = {
    404: "Trakt does not know this code (404)",
    409: "this code was already used (409)",
    418: "the login was denied on trakt.tv (418)",
}


async def poll_for_token(
    client: TraktClient,
    code: DeviceCode,
    clock: Clock,
    *,
    client_id: str,
    client_secret: str,
    on_poll: Callable[[float], None] | None = None,
) -> Token:
    """Poll at the code's interval until approved; raises LoginFailed/LoginExpired otherwise.

    `on_poll` gets the seconds left before the code expires, for a progress display.
    """
    deadline = clock.monotonic() + code.expires_in
    interval = code.interval
    while True:
        await clock.sleep(interval)
        left = deadline - clock.monotonic()
        if left <= 0:
            raise LoginExpired
        if on_poll is not None:
            on_poll(left)
        try:
            resp = await client.post(
                "/oauth/device/token",
                {"code": code.device_code, "client_id": client_id, "client_secret": client_secret},
                auth=False,
            )
        except RateLimited:
            interval += 1.0  # "slow down"
            continue
        except TransportError:
            continue
        except TraktError as err:
            if err.status == 400:  # pending: the user has not approved yet
                continue
            if err.status == 410:
                raise LoginExpired from err
            if err.status == 401:
                raise LoginFailed(
                    "Trakt refused the client secret: check [trakt] client_secret"
                ) from err
            message = _FINAL.get(err.status or 0)
            if message is not None:
                raise LoginFailed(message, again=True) from err
            if err.retryable:
                continue
            raise LoginFailed(f"the login failed: {err}") from err
        try:
            return Token.from_response(resp.data, clock.time())
        except ValueError as err:
            raise LoginFailed("Trakt's token answer was not understood") from err


async def login_until_done(
    client: TraktClient,
    clock: Clock,
    *,
    client_id: str,
    client_secret: str,
    announce: Callable[[DeviceCode], None],
    cap: float = 3600.0,
) -> Token:
    """The daemon's login: new codes for expired ones, with growing pauses between them.

    The first pause is a tenth of the code's lifetime (a minute for Trakt's ten-minute
    codes): a user who missed one code gets another soon, an absent one costs Trakt little.
    """
    delay: float | None = None
    while True:
        try:
            code = await request_code(client, client_id)
        except LoginFailed as err:
            delay = min(cap, delay * 2) if delay is not None else 30.0
            log.warning("%s; trying again in %.0f s", err, delay)
            await clock.sleep(delay)
            continue
        announce(code)
        try:
            return await poll_for_token(
                client, code, clock, client_id=client_id, client_secret=client_secret
            )
        except LoginFailed as err:
            first = min(60.0, max(1.0, code.expires_in / 10))
            delay = min(cap, delay * 2) if delay is not None else first
            log.warning("%s; a new code in %.0f s", err, delay)
        await clock.sleep(delay)
