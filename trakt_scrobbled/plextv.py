"""Signing in to Plex the way Plex apps do, and the Plex login this leaves behind.

`plex login` asks plex.tv for a PIN (`POST /api/v2/pins`, `strong=true`), the user opens
app.plex.tv/auth with its code and signs in there (we never see a password), and we poll
`GET /api/v2/pins/{id}` until the PIN carries an `authToken`. The account's servers come from
`/api/v2/resources`, each with the token to use on it and the addresses it can be reached at.

What it learns is kept in `plex.json` beside the Trakt token, written the same way (atomically,
mode 0600); `[plex] url` and `token` in the config win over it. No token is ever logged or
printed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from trakt_scrobbled.clock import Clock
from trakt_scrobbled.config import PlexConfig
from trakt_scrobbled.paths import PLEX_LOGIN_FILE_NAME
from trakt_scrobbled.players.plex_live import LiveCredentials
from trakt_scrobbled.players.plex_server import PRODUCT, host_of, plex_headers
from trakt_scrobbled.privatefile import write_private

__all__ = [
    "LOGIN_FILE_NAME",
    "PlexLogin",
    "PlexLoginFailed",
    "PlexLoginStore",
    "PlexTv",
    "ServerResource",
    "auth_url",
    "live_credentials",
    "log_in",
]

log = logging.getLogger(__name__)

LOGIN_FILE_NAME = PLEX_LOGIN_FILE_NAME
AUTH_APP = "https://app.plex.tv/auth"
POLL_EVERY = 2.0
"""Seconds between two looks at the PIN (Plex's own apps poll about as often)."""
LOGIN_TIMEOUT = 600.0
"""Seconds the user has to sign in, at most (the PIN may say less)."""
TIMEOUT = 10.0
PROBE_TIMEOUT = 3.0
"""Seconds a server address may take to answer `/identity`."""


class PlexLoginFailed(Exception):
    """The login cannot go on; the message says what to do (and holds no token)."""


@dataclass(frozen=True, slots=True)
class PlexLogin:
    """What `plex.json` holds."""

    client_identifier: str
    token: str = field(default="", repr=False)
    url: str = ""
    server_name: str = ""
    account_id: str | None = None
    account: str | None = None


class PlexLoginStore:
    """`plex.json` in the state folder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> PlexLogin | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            log.error(
                "cannot read the Plex login %s (%s): run `trakt-scrobbled plex login`",
                self.path,
                type(err).__name__,
            )
            return None
        if not isinstance(data, dict) or not isinstance(data.get("client_identifier"), str):
            log.error("the Plex login %s is damaged: run `trakt-scrobbled plex login`", self.path)
            return None

        def text(key: str) -> str:
            value = data.get(key)
            return value if isinstance(value, str) else ""

        return PlexLogin(
            client_identifier=data["client_identifier"],
            token=text("token"),
            url=text("url"),
            server_name=text("server_name"),
            account_id=text("account_id") or None,
            account=text("account") or None,
        )

    def save(self, login: PlexLogin) -> None:
        payload = {
            "client_identifier": login.client_identifier,
            "token": login.token,
            "url": login.url,
            "server_name": login.server_name,
            "account_id": login.account_id,
            "account": login.account,
        }
        write_private(self.path, json.dumps(payload, indent=1).encode())

    def client_identifier(self) -> str:
        """Ours, the same across runs: Plex lists each device (and its PINs) by it."""
        login = self.load()
        if login is not None:
            return login.client_identifier
        # Stable per state folder without writing anything before a login.
        return f"trakt-scrobbled-{uuid.uuid5(uuid.NAMESPACE_URL, str(self.path.parent)).hex}"


def live_credentials(plex: PlexConfig, store: PlexLoginStore | None) -> LiveCredentials:
    """The server and token live mode uses: the config's, else those `plex login` stored."""
    login = store.load() if store is not None else None
    if login is None:
        login = PlexLogin(store.client_identifier() if store is not None else PRODUCT)
    return LiveCredentials(
        url=plex.url or login.url,
        token=plex.token or login.token,
        client_identifier=login.client_identifier,
        account_id=login.account_id if not plex.token else None,
        account=login.account if not plex.token else None,
    )


def auth_url(client_identifier: str, code: str) -> str:
    """The page where the user signs in and approves our PIN."""
    query = urllib.parse.urlencode(
        {"clientID": client_identifier, "code": code, "context[device][product]": PRODUCT}
    )
    return f"{AUTH_APP}#?{query}"


@dataclass(frozen=True, slots=True)
class Pin:
    id: int
    code: str
    expires_in: float


@dataclass(frozen=True, slots=True)
class ServerResource:
    """One server of the account, as `/api/v2/resources` lists it."""

    name: str
    owned: bool
    access_token: str = field(repr=False)
    connections: tuple[tuple[str, bool, bool], ...]
    """(uri, local, relay), in Plex's order."""


class PlexTv:
    """The few plex.tv calls a login needs."""

    def __init__(self, base_url: str, client_identifier: str, *, timeout: float = TIMEOUT) -> None:
        self.client_identifier = client_identifier
        self._base = base_url.rstrip("/")
        self._host = host_of(self._base)
        self._http = httpx.AsyncClient(
            base_url=self._base, headers=plex_headers(client_identifier), timeout=timeout
        )

    async def __aenter__(self) -> PlexTv:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, *, token: str = "", **kw: Any) -> Any:
        headers = {"X-Plex-Token": token} if token else {}
        try:
            response = await self._http.request(method, path, headers=headers, **kw)
        except httpx.HTTPError as err:
            raise PlexLoginFailed(
                f"{self._host} did not answer ({type(err).__name__}); try again"
            ) from err
        what = path.split("?", 1)[0]
        if response.status_code == 401:
            raise PlexLoginFailed(f"{self._host} refused the login (401); run the login again")
        if response.status_code >= 400:
            raise PlexLoginFailed(
                f"{self._host} answered {method} {what} with HTTP {response.status_code}"
            )
        try:
            return response.json()
        except ValueError as err:
            raise PlexLoginFailed(f"{self._host} answered {what} with something not JSON") from err

    async def create_pin(self) -> Pin:
        data = await self._call("POST", "/api/v2/pins", params={"strong": "true"})
        try:
            return Pin(int(data["id"]), str(data["code"]), float(data.get("expiresIn") or 900))
        except (TypeError, KeyError, ValueError) as err:
            raise PlexLoginFailed("plex.tv's answer to the PIN request was not understood") from err

    async def pin_token(self, pin: Pin) -> str | None:
        """The PIN's auth token once the user signed in, else None."""
        data = await self._call("GET", f"/api/v2/pins/{pin.id}")
        token = data.get("authToken") if isinstance(data, dict) else None
        return token if isinstance(token, str) and token else None

    async def wait_for_token(self, pin: Pin, clock: Clock, *, every: float = POLL_EVERY) -> str:
        deadline = clock.monotonic() + min(pin.expires_in, LOGIN_TIMEOUT)
        while True:
            token = await self.pin_token(pin)
            if token is not None:
                return token
            if clock.monotonic() >= deadline:
                raise PlexLoginFailed("nobody signed in with the code in time; run it again")
            await clock.sleep(every)

    async def user(self, token: str) -> tuple[str | None, str | None]:
        """The account's plex.tv id and name."""
        data = await self._call("GET", "/api/v2/user", token=token)
        if not isinstance(data, dict):
            return None, None
        account_id = data.get("id")
        name = data.get("username") or data.get("title")
        return (
            str(account_id) if isinstance(account_id, int | str) else None,
            name if isinstance(name, str) else None,
        )

    async def servers(self, token: str) -> list[ServerResource]:
        data = await self._call(
            "GET", "/api/v2/resources", token=token, params={"includeHttps": "1"}
        )
        out: list[ServerResource] = []
        for entry in data if isinstance(data, list) else []:
            if not isinstance(entry, dict) or "server" not in str(entry.get("provides", "")):
                continue
            connections = tuple(
                (str(c["uri"]), bool(c.get("local")), bool(c.get("relay")))
                for c in entry.get("connections") or []
                if isinstance(c, dict) and isinstance(c.get("uri"), str)
            )
            access = entry.get("accessToken")
            out.append(
                ServerResource(
                    name=str(entry.get("name") or "Plex Media Server"),
                    owned=bool(entry.get("owned")),
                    access_token=access if isinstance(access, str) and access else token,
                    connections=connections,
                )
            )
        return out


def choose_server(servers: Sequence[ServerResource], name: str | None) -> ServerResource:
    """The one named, else the only one, else the first the account owns."""
    if not servers:
        raise PlexLoginFailed(
            "this Plex account has no server; set [plex] url to the server's address"
        )
    if name is not None:
        for server in servers:
            if server.name.casefold() == name.casefold():
                return server
        names = ", ".join(s.name for s in servers)
        raise PlexLoginFailed(f"no server named {name!r} on this account (there are: {names})")
    owned = [s for s in servers if s.owned]
    return (owned or list(servers))[0]


async def reachable_uri(server: ServerResource, client_identifier: str) -> str | None:
    """The first of the server's addresses that answers: local ones first, relays last."""
    ordered = sorted(server.connections, key=lambda c: (not c[1], c[2]))
    headers = plex_headers(client_identifier)
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT, headers=headers) as http:

        async def probe(uri: str) -> str | None:
            try:
                response = await http.get(f"{uri.rstrip('/')}/identity")
            except httpx.HTTPError:
                return None
            return uri.rstrip("/") if response.status_code == 200 else None

        answers = await asyncio.gather(*(probe(uri) for uri, _, _ in ordered))
    return next((a for a in answers if a is not None), None)


async def log_in(
    plex: PlexConfig,
    store: PlexLoginStore,
    clock: Clock,
    say: Callable[[str], None],
    *,
    server_name: str | None = None,
    poll_every: float = POLL_EVERY,
) -> PlexLogin:
    """The whole PIN login; saves and returns what it learnt. Raises `PlexLoginFailed`."""
    client_id = store.client_identifier()
    async with PlexTv(plex.plex_tv_url, client_id) as tv:
        pin = await tv.create_pin()
        say(
            "Open this page and sign in to Plex:\n\n"
            f"  {auth_url(client_id, pin.code)}\n\n"
            f"(code {pin.code}; waiting for you to sign in...)"
        )
        token = await tv.wait_for_token(pin, clock, every=poll_every)
        account_id, account = await tv.user(token)
        servers = await tv.servers(token)
    if plex.url:
        # The configured server; on a server shared with this account its own token is needed.
        server = next(
            (s for s in servers if any(u.rstrip("/") == plex.url for u, _, _ in s.connections)),
            None,
        )
        url = plex.url
        name = server.name if server is not None else ""
        server_token = server.access_token if server is not None else token
    else:
        chosen = choose_server(servers, server_name)
        found = await reachable_uri(chosen, client_id)
        if found is None:
            raise PlexLoginFailed(
                f"none of the addresses of the server {chosen.name!r} answered from here; "
                "set [plex] url to its address and run the login again"
            )
        url, name, server_token = found, chosen.name, chosen.access_token
    login = PlexLogin(client_id, server_token, url, name, account_id, account)
    try:
        store.save(login)
    except OSError as err:
        raise PlexLoginFailed(
            f"signed in, but the login could not be saved to {store.path} ({err.strerror})"
        ) from err
    return login
