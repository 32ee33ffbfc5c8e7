"""Typed errors for every answer of Trakt that is not a success.

The outbox decides what to do with a failed call by the error's class alone: retry later,
wait, park until login, treat as done, or dead-letter it.
"""

from __future__ import annotations

import os


class TraktError(Exception):
    """Any failure talking to Trakt. `status` is the HTTP status, or None for transport errors."""

    status: int | None = None
    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class TransportError(TraktError):
    """Timeout, refused or dropped connection, DNS failure: Trakt may not have seen the call."""

    retryable = True


class UnreadableAnswer(TransportError):
    """A 2xx whose body is not JSON (captive portal, proxy page, truncated): the call is in doubt.

    Trakt may or may not have seen it: the sender treats it as a lost answer, so a resend is
    checked against the history first, and the row is never dead-lettered for it.
    """


class BadRequest(TraktError):
    status = 400


class Unauthorized(TraktError):
    """401: the access token is missing, expired or revoked."""

    status = 401


class InvalidGrant(Unauthorized):
    """The refresh token was refused: only a new login helps."""


class Forbidden(TraktError):
    """403: the client id is wrong or the app is not approved."""

    status = 403


class NotFound(TraktError):
    status = 404


class MethodNotFound(TraktError):
    status = 405


class Conflict(TraktError):
    """409: already done (a scrobble of the same item just now): counts as success."""

    status = 409


class Deactivated(TraktError):
    """410: the account is deactivated; the user must log in on the website."""

    status = 410


class PreconditionFailed(TraktError):
    status = 412


class AccountLimit(TraktError):
    """420: a VIP-enhanced limit was exceeded."""

    status = 420


class Unprocessable(TraktError):
    """422: validation error (e.g. a stop with progress under 1 %)."""

    status = 422


class Locked(TraktError):
    """423: the account is locked; the user must run a history analysis on the website."""

    status = 423


class VipOnly(TraktError):
    status = 426


class RateLimited(TraktError):
    """429: wait `retry_after` seconds (None when the edge answered without the header)."""

    status = 429
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None, status: int = 429) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ServerError(TraktError):
    """5xx, including the 520–522 edge errors: try again later."""

    retryable = True


class UnexpectedStatus(TraktError):
    """A status the blueprint does not list."""


_BY_STATUS: dict[int, type[TraktError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotFound,
    409: Conflict,
    410: Deactivated,
    412: PreconditionFailed,
    420: AccountLimit,
    422: Unprocessable,
    423: Locked,
    426: VipOnly,
}

_HINTS: dict[int, str] = {
    401: "the Trakt login is missing or expired: run `trakt-scrobbled login`",
    403: "Trakt rejected the client id: check [trakt] client_id (or TRAKT_CLIENT_ID)",
    410: "the Trakt account is deactivated: log in at https://trakt.tv to reactivate it",
    420: "a Trakt account limit was exceeded: Trakt VIP raises it, see https://trakt.tv/vip",
    423: "the Trakt account is locked: run the history analysis at https://trakt.tv/settings/data",
    426: "this needs Trakt VIP: see https://trakt.tv/vip",
}


def error_for_status(
    status: int, *, path: str, detail: str = "", retry_after: float | None = None
) -> TraktError:
    """The error to raise for a non-2xx answer to `path`."""
    hint = _HINTS.get(status, "")
    text = f"Trakt answered {status} to {path}"
    if hint:
        text += f": {hint}"
    if detail:
        text += f" ({detail})"
    if status == 429:
        return RateLimited(text, retry_after=retry_after)
    if 500 <= status <= 599:
        return ServerError(text, status=status)
    cls = _BY_STATUS.get(status)
    if cls is None:
        return UnexpectedStatus(text, status=status)
    return cls(text, status=status)


def transport_reason(err: BaseException) -> str:
    """The OS's words (`Connection refused`, `Name or service not known`), not the library's
    class name: the deepest OS error in the chain says it best."""
    reason = ""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and isinstance(seen.errno, int):
            reason = os.strerror(seen.errno) if seen.errno > 0 else str(seen.strerror)
        elif isinstance(seen, TimeoutError) and not reason:
            reason = "no answer in time"
        seen = seen.__cause__ or seen.__context__
    return reason or str(err) or type(err).__name__
