"""OAuth tokens: stored atomically and privately, refreshed by exactly one caller at a time.

Trakt's refresh tokens are single use: two concurrent refreshes would burn the login, and a new
pair that is not on disk before it is used would be lost by a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from trakt_scrobbled.clock import Clock
from trakt_scrobbled.logs import for_account
from trakt_scrobbled.privatefile import write_private
from trakt_scrobbled.trakt.client import TraktClient
from trakt_scrobbled.trakt.errors import TraktError, Unauthorized

log = logging.getLogger(__name__)


class AuthState(StrEnum):
    LOGGED_IN = "logged in"
    LOGIN_NEEDED = "login needed"


@dataclass(frozen=True, slots=True)
class Token:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: float
    """Wall-clock seconds since the epoch."""

    @classmethod
    def from_response(cls, data: Any, now: float) -> Token:
        """Build from Trakt's token answer; raises ValueError when it is not one."""
        if not isinstance(data, dict):
            raise ValueError("token answer is not an object")
        access, refresh = data.get("access_token"), data.get("refresh_token")
        if not isinstance(access, str) or not isinstance(refresh, str) or not access:
            raise ValueError("token answer lacks access_token/refresh_token")
        created = data.get("created_at")
        expires_in = data.get("expires_in")
        base = float(created) if isinstance(created, int | float) else now
        life = float(expires_in) if isinstance(expires_in, int | float) else 86400.0
        return cls(access, refresh, base + life)


class TokenStore:
    """The token file: mode 0600 in a 0700 folder, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._complained: str | None = None
        """The last trouble logged as an error: the same one again is a debug line."""

    def _trouble(self, what: str) -> None:
        if what == self._complained:
            log.debug("%s", what)
        else:
            self._complained = what
            log.error("%s", what)

    def load(self) -> Token | None:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self._complained = None
            return None
        except OSError as err:
            self._trouble(f"cannot read the token file {self.path} ({err.strerror}): log in again")
            return None
        except ValueError:  # not UTF-8
            self._trouble(f"the token file {self.path} is damaged: log in again")
            return None
        try:
            data = json.loads(raw)
            token = Token(
                str(data["access_token"]), str(data["refresh_token"]), float(data["expires_at"])
            )
        except (ValueError, KeyError, TypeError):
            self._trouble(f"the token file {self.path} is damaged: log in again")
            return None
        self._complained = None
        return token

    def save(self, token: Token) -> None:
        payload = json.dumps(
            {
                "access_token": token.access_token,
                "refresh_token": token.refresh_token,
                "expires_at": token.expires_at,
            }
        ).encode()
        write_private(self.path, payload)

    def delete(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class Auth:
    """The current login, as the rest of the daemon needs it."""

    def __init__(
        self,
        store: TokenStore,
        clock: Clock,
        *,
        client_id: str,
        client_secret: str,
        account: str = "",
    ) -> None:
        """`account`: the household account whose login this is ('' the single one)."""
        self._log = for_account(log, account)
        self._store = store
        self._clock = clock
        self._client_id = client_id
        self._client_secret = client_secret
        self._token = store.load()
        self._on_disk = self._token
        """The pair the file held when we last read or wrote it: any other was written by
        another process (`trakt-scrobbled login`) and is newer than ours."""
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self.generation = 0
        """Bumped on every change of login; pass it to `wait_changed` to miss none."""

    def set_client(self, client_id: str, client_secret: str) -> None:
        """A reloaded config changed the app's credentials."""
        self._client_id = client_id
        self._client_secret = client_secret

    @property
    def state(self) -> AuthState:
        return AuthState.LOGGED_IN if self._token is not None else AuthState.LOGIN_NEEDED

    @property
    def expires_at(self) -> float | None:
        return None if self._token is None else self._token.expires_at

    def access_token(self) -> str | None:
        return None if self._token is None else self._token.access_token

    def set_token(self, token: Token) -> None:
        """A new login: saved before it is used."""
        self._adopt(token)
        self._log.info("logged in to Trakt")
        self._bump()

    def _adopt(self, token: Token) -> None:
        """Use `token` from now on, saved first so that a crash cannot lose a spent pair.

        A pair that cannot be saved is still used: the old one may be spent already, and this
        one at least works until the daemon stops.
        """
        try:
            self._store.save(token)
        except OSError as err:
            self._log.error(
                "cannot save the Trakt login to %s (%s): it is used until the daemon stops, "
                "then a new login is needed",
                self._store.path,
                err.strerror,
            )
        else:
            self._on_disk = token
        self._token = token

    def _newer_on_disk(self) -> Token | None:
        """A pair another process saved since we last looked, if any."""
        stored = self._store.load()
        if stored is None or stored == self._on_disk or stored == self._token:
            return None
        return stored

    def reload(self) -> bool:
        """Pick up a token written by `trakt-scrobbled login` in another process."""
        token = self._store.load()
        if token is not None and token != self._token:
            self._token = self._on_disk = token
            self._log.info("logged in to Trakt")
            self._bump()
            return True
        return False

    def forget(self) -> None:
        """The login is unusable: keep running, queue everything, ask for a new login once."""
        if self._token is None:
            return
        newer = self._newer_on_disk()
        if newer is not None:
            # `trakt-scrobbled login` ran meanwhile: its pair is not the one that failed.
            self._token = self._on_disk = newer
            self._log.info("logged in to Trakt (a new login was saved)")
            self._bump()
            return
        # Only what happened: the daemon's login loop says next, once, how to log in again.
        self._log.error("Trakt no longer accepts the login (revoked or expired)")
        self.drop()

    def drop(self) -> None:
        """Stop using the login now (`trakt-scrobbled logout`, or a spent pair) and delete it:
        reloading it would only fail again."""
        if self._token is None and self._on_disk is None:
            return
        self._token = None
        self._store.delete()
        self._on_disk = None
        self._bump()

    def _bump(self) -> None:
        self.generation += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_changed(self, since: int | None = None) -> None:
        """Return at the next change of login, or at once if one happened after `since`."""
        if since is not None and since != self.generation:
            return
        await self._changed.wait()

    async def refresh(self, client: TraktClient, rejected: str | None) -> bool:
        """Exchange the refresh token; True when a usable access token is in place.

        Callers that saw a 401 with the same `rejected` token while another refresh ran get that
        refresh's result instead of spending the single-use refresh token twice.
        """
        async with self._lock:
            current = self._token
            if current is None:
                return False
            if rejected is not None and current.access_token != rejected:
                return True
            newer = self._newer_on_disk()
            if newer is not None:
                # A login in another process replaced ours; refreshing ours would waste it.
                self._token = self._on_disk = newer
                self._log.info("logged in to Trakt (a new login was saved)")
                self._bump()
                return True
            try:
                resp = await client.post(
                    "/oauth/token",
                    {
                        "refresh_token": current.refresh_token,
                        "client_id": self._client_id,
                        "client_secret": self._client_secret,
                        "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
                        "grant_type": "refresh_token",
                    },
                    auth=False,
                )
                token = Token.from_response(resp.data, self._clock.time())
            except Unauthorized:
                self.forget()
                return False
            except (TraktError, ValueError) as err:
                self._log.warning("could not refresh the Trakt login (%s); will try again", err)
                return False
            self._adopt(token)
            self._log.info("Trakt login refreshed")
            self._bump()
            return True
