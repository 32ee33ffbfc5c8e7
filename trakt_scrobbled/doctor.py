"""`trakt-scrobbled doctor`: every check of a working setup, each with what to do about it.

Each check is a small function of the config section, paths or environment it looks at (so a
test gives it its own), returning `Check`s. A `FAIL` is something that stops scrobbling until
the user acts; a `NOTE` is worth knowing but may be fine (no mpv running right now, no systemd).
Checks only look: they never refresh a token, migrate the database or start anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import glob
import json
import os
import re
import shutil
import sqlite3
import stat
import tempfile
import time
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from trakt_scrobbled.clock import SystemClock
from trakt_scrobbled.config import (
    Config,
    ConfigError,
    KodiConfig,
    MediaServerConfig,
    MprisConfig,
    MpvConfig,
    PlexConfig,
    PlexMode,
    ServerConfig,
    TraktConfig,
    load_config,
)
from trakt_scrobbled.control import ControlError, ControlPath, NotRunning, control_path
from trakt_scrobbled.paths import STATE_DIR_MODE, Paths
from trakt_scrobbled.redact import mask_url
from trakt_scrobbled.service import UNIT_NAME, user_unit_dir
from trakt_scrobbled.status_view import START_HINT, duration, fetch_status
from trakt_scrobbled.store import SCHEMA_VERSION
from trakt_scrobbled.term import Paint
from trakt_scrobbled.trakt.auth import Token, TokenStore
from trakt_scrobbled.trakt.client import TraktClient
from trakt_scrobbled.trakt.errors import (
    Forbidden,
    ServerError,
    TraktError,
    TransportError,
    transport_reason,
)
from trakt_scrobbled.trakt.ratelimit import PostRateLimiter

__all__ = [
    "Check",
    "CheckStatus",
    "check_config",
    "check_daemon",
    "check_kodi",
    "check_login",
    "check_media_server",
    "check_mpris",
    "check_mpv",
    "check_plex",
    "check_plex_live",
    "check_service",
    "check_state",
    "check_token",
    "check_trakt",
    "diagnose",
    "probe_mpv",
]

TOKEN_MODE = 0o600
LOCAL_TIMEOUT = 2.0
"""Seconds for anything on this machine or the LAN (mpv, Kodi, the daemon, systemctl)."""
TRAKT_TIMEOUT = 10.0

APPS_URL = "https://trakt.tv/oauth/applications"
SOCKET_HINT = (
    "put `input-ipc-server=~/.config/mpv/socket` in ~/.config/mpv/mpv.conf and set "
    '[mpv] sockets = ["~/.config/mpv/socket"] (or [mpv] enabled = false)'
)
KODI_HINT = (
    "in Kodi enable Settings > Services > Control > "
    '"Allow remote control from applications on this system" '
    "(and check [kodi] host and port: Kodi's JSON-RPC TCP port is 9090 by default)"
)
_ACTIVE = frozenset({"active", "reloading", "activating", "refreshing"})
_UNIT_STATES = _ACTIVE | {"inactive", "failed", "deactivating", "maintenance"}


class CheckStatus(StrEnum):
    OK = "ok"
    NOTE = "note"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: `hint` says what to do about it (empty when nothing needs doing)."""

    name: str
    status: CheckStatus
    message: str
    hint: str = ""

    def render(self, paint: Paint | None = None) -> str:
        paint = paint or Paint(False)
        tag = f"{'[' + self.status + ']':<6}"
        style = {CheckStatus.OK: "ok", CheckStatus.NOTE: "note", CheckStatus.FAIL: "fail"}
        text = f"{paint(style[self.status], tag)} {self.name}: {self.message}"
        return f"{text} -> {paint('bold', self.hint)}" if self.hint else text

    @property
    def failed(self) -> bool:
        return self.status is CheckStatus.FAIL


def _ok(name: str, message: str, hint: str = "") -> Check:
    return Check(name, CheckStatus.OK, message, hint)


def _note(name: str, message: str, hint: str = "") -> Check:
    return Check(name, CheckStatus.NOTE, message, hint)


def _fail(name: str, message: str, hint: str = "") -> Check:
    return Check(name, CheckStatus.FAIL, message, hint)


# --- config and files ---------------------------------------------------------------------------


def check_config(
    path: Path, env: Mapping[str, str], *, explicit: bool = False
) -> tuple[Config | None, tuple[Check, ...]]:
    """The config as the daemon would load it, or every problem in it."""
    try:
        config = load_config(path, env, explicit=explicit)
    except ConfigError as err:
        # One failure per problem (a heading counted as another would say two for one).
        hint = "fix it; `trakt-scrobbled config check` lists every problem again"
        return None, tuple(
            _fail("config", p.render(err.source or path), hint if i == 0 else "")
            for i, p in enumerate(err.problems)
        )
    if config.source is None:
        return config, (_ok("config", f"no file at {path}: the defaults apply"),)
    return config, (_ok("config", f"{path} is valid"),)


def check_state(paths: Paths) -> tuple[Check, ...]:
    """The state folder (private, writable) and the database in it (readable, not newer)."""
    folder = paths.state_dir
    try:
        info = folder.stat()
    except FileNotFoundError:
        return (
            _note(
                "state",
                f"{folder} does not exist yet",
                "the daemon or `trakt-scrobbled login` creates it",
            ),
        )
    except OSError as err:
        return (_fail("state", f"cannot look at {folder}: {_why(err)}", "fix its permissions"),)
    if not stat.S_ISDIR(info.st_mode):
        return (_fail("state", f"{folder} is not a folder", f"move it aside: rm -i {folder}"),)
    checks: list[Check] = []
    mode = stat.S_IMODE(info.st_mode)
    if mode != STATE_DIR_MODE:
        checks.append(
            _fail(
                "state",
                f"{folder} has mode {mode:04o}: others may read your Trakt login in it",
                f"chmod 700 {folder}",
            )
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=".doctor-", dir=folder)
    except OSError as err:
        checks.append(
            _fail(
                "state",
                f"cannot write in {folder}: {_why(err)}",
                f"make it yours and writable: chown -R $USER {folder}",
            )
        )
    else:
        os.close(fd)
        os.unlink(probe)
        if mode == STATE_DIR_MODE:
            checks.append(_ok("state", f"{folder} is private (0700) and writable"))
    checks.extend(_check_free_space(folder))
    checks.append(check_database(paths.db_file))
    return tuple(checks)


MIN_FREE = 1024 * 1024
"""Bytes free under the state folder below which its disk counts as full."""


def _check_free_space(folder: Path) -> tuple[Check, ...]:
    """A full disk: the daemon holds scrobbles in memory until space is back, but a restart
    meanwhile would lose them."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return ()
    if free >= MIN_FREE:
        return ()
    return (
        _fail(
            "state",
            f"the disk holding {folder} is full ({free} bytes free): scrobbles wait in the "
            "daemon's memory and are lost if it stops",
            "free some space on that disk",
        ),
    )


def check_database(db_file: Path) -> Check:
    """Opens the database read-only: a doctor never migrates or repairs it."""
    if not db_file.exists():
        return _note("database", f"no database at {db_file} yet", "the daemon creates it")
    uri = f"file:{urllib.parse.quote(str(db_file))}?mode=ro"
    aside = f"move it aside (its queued scrobbles would be lost): mv {db_file} {db_file}.broken"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=LOCAL_TIMEOUT)
    except sqlite3.Error as err:
        return _fail("database", f"cannot open {db_file}: {err}", "check its permissions")
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
        counts: tuple[Any, ...] = (0, 0)
        if 1 <= version <= SCHEMA_VERSION and verdict == "ok":
            counts = conn.execute(
                "SELECT COALESCE(SUM(state = 'pending'), 0), COALESCE(SUM(state = 'dead'), 0) "
                "FROM outbox"
            ).fetchone()
    except sqlite3.DatabaseError as err:
        return _fail("database", f"{db_file} is unreadable ({err})", aside)
    finally:
        conn.close()
    if verdict != "ok":
        return _fail("database", f"{db_file} is damaged ({verdict})", aside)
    if version > SCHEMA_VERSION:
        return _fail(
            "database",
            f"{db_file} was written by a newer trakt-scrobbled (schema {version}, "
            f"this one knows {SCHEMA_VERSION})",
            "upgrade trakt-scrobbled",
        )
    pending, dead = int(counts[0]), int(counts[1])
    message = f"{db_file} opens: {pending} scrobble(s) queued, {dead} failed"
    if dead:
        return _ok("database", message, "see `trakt-scrobbled queue`")
    return _ok("database", message)


def check_token(token_file: Path, *, now: float, account: str = "") -> tuple[Check, Token | None]:
    """The stored login: present, private, readable, not expired. Returns it when usable.

    `account` names a household account (its own check, `login ACCOUNT`)."""
    if account:
        check, token = check_token(token_file, now=now)
        login_hint = f"trakt-scrobbled login --account {account}"
        hint = check.hint.replace("trakt-scrobbled login", login_hint)
        return replace(check, name=f"login {account}", hint=hint), token
    login = "run `trakt-scrobbled login`"
    try:
        info = token_file.stat()
    except FileNotFoundError:
        return _fail("login", f"not logged in (no token in {token_file})", login), None
    except OSError as err:
        return _fail("login", f"cannot look at {token_file}: {_why(err)}", login), None
    mode = stat.S_IMODE(info.st_mode)
    if mode != TOKEN_MODE:
        return (
            _fail(
                "login",
                f"{token_file} has mode {mode:04o}: others may read your Trakt login",
                f"chmod 600 {token_file}",
            ),
            None,
        )
    token = TokenStore(token_file).load()
    if token is None:
        return _fail("login", f"{token_file} is damaged or unreadable", login), None
    when = datetime.fromtimestamp(token.expires_at).strftime("%Y-%m-%d %H:%M")
    if token.expires_at <= now:
        return (
            _fail(
                "login",
                f"the Trakt login expired on {when}",
                "start the daemon, which refreshes it, or " + login,
            ),
            None,
        )
    return (
        _ok("login", f"token valid until {when} (in {duration(token.expires_at - now)})"),
        token,
    )


# --- Trakt ----------------------------------------------------------------------------------


def _client(trakt: TraktConfig, token: Token | None, timeout: float) -> TraktClient:
    access = None if token is None else token.access_token
    return TraktClient(
        trakt.api_url,
        trakt.client_id,
        PostRateLimiter(SystemClock()),
        token=lambda: access,
        timeout=timeout,
    )


async def check_trakt(trakt: TraktConfig, *, wait: float = TRAKT_TIMEOUT) -> tuple[Check, ...]:
    """Trakt reachable at `api_url`, and the client id accepted (an unauthenticated GET)."""
    if not trakt.client_id:
        return (
            _fail(
                "trakt",
                "no Trakt client id",
                "set [trakt] client_id in the config (or TRAKT_CLIENT_ID); create an app at "
                + APPS_URL,
            ),
        )
    checks: list[Check] = []
    if not trakt.client_secret:
        checks.append(
            _fail(
                "trakt",
                "no Trakt client secret: logging in and refreshing the login need it",
                "set [trakt] client_secret in the config (or TRAKT_CLIENT_SECRET), from "
                + APPS_URL,
            )
        )
    async with _client(trakt, None, wait) as client:
        try:
            await client.get("/search/movie", {"query": "trakt-scrobbled", "limit": 1})
        except TraktError as err:
            checks.append(_trakt_failure(trakt, err))
            return tuple(checks)
    checks.append(_ok("trakt", f"{mask_url(trakt.api_url)} answers and accepts the client id"))
    return tuple(checks)


def _trakt_failure(trakt: TraktConfig, err: TraktError) -> Check:
    if isinstance(err, TransportError):
        return _fail(
            "trakt",
            f"Trakt is not reachable at {mask_url(trakt.api_url)}: {_transport_reason(err)}",
            "check the network, or [trakt] api_url",
        )
    if isinstance(err, Forbidden):
        return _fail(
            "trakt",
            f"Trakt rejected the client id (403) at {mask_url(trakt.api_url)}",
            f"check [trakt] client_id (or TRAKT_CLIENT_ID) against {APPS_URL}",
        )
    if isinstance(err, ServerError):
        return _fail("trakt", f"Trakt is having trouble: {err}", "try again later")
    return _fail("trakt", str(err))


async def check_login(trakt: TraktConfig, token: Token, *, wait: float = TRAKT_TIMEOUT) -> Check:
    """Trakt accepts the stored token: one authenticated GET."""
    async with _client(trakt, token, wait) as client:
        try:
            await client.get("/sync/history", {"limit": 1}, auth=True)
        except TraktError as err:
            if err.status == 401:
                return _fail(
                    "login",
                    "Trakt rejected the stored login (revoked, or refreshed elsewhere)",
                    "run `trakt-scrobbled login`",
                )
            if isinstance(err, Forbidden | TransportError | ServerError):
                return _trakt_failure(trakt, err)
            return _fail("login", str(err))
    return _ok("login", "Trakt accepts the login")


def _transport_reason(err: TraktError) -> str:
    return transport_reason(err)


# --- players ----------------------------------------------------------------------------------


async def probe_mpv(path: str, *, wait: float = LOCAL_TIMEOUT) -> str:
    """mpv's version from the IPC socket at `path`; raises OSError or TimeoutError."""
    async with asyncio.timeout(wait):
        reader, writer = await asyncio.open_unix_connection(path)
        try:
            request = {"command": ["get_property", "mpv-version"], "request_id": 1}
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            while line := await reader.readline():
                with contextlib.suppress(ValueError):
                    reply = json.loads(line)
                    if isinstance(reply, dict) and reply.get("request_id") == 1:
                        return str(reply.get("data") or "mpv")
            raise ConnectionResetError("mpv closed the connection without answering")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _has_magic(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


async def check_mpv(mpv: MpvConfig, *, wait: float = LOCAL_TIMEOUT) -> tuple[Check, ...]:
    """Each configured socket path or glob: found now? answering?"""
    if not mpv.enabled:
        return ()
    if not mpv.sockets:
        return (_fail("mpv", "enabled, but no IPC socket is configured", SOCKET_HINT),)
    checks: list[Check] = []
    for pattern in mpv.sockets:
        found, missing = _socket_paths(pattern)
        if not found and _has_magic(pattern):
            # A glob is no path to give mpv: suggest one that it matches.
            example = example_path(pattern)
            checks.append(
                _note(
                    "mpv",
                    f"no mpv socket matches {pattern}{missing}",
                    f"start mpv with --input-ipc-server={example} (any path matching the "
                    "pattern); the daemon picks the socket up when it appears",
                )
            )
            continue
        if not found:
            checks.append(
                _note(
                    "mpv",
                    f"no mpv is running with --input-ipc-server={pattern}{missing}",
                    "start mpv with that option; the daemon picks the socket up when it appears",
                )
            )
            continue
        for path in found:
            checks.append(await _check_socket(path, wait))
    return tuple(checks)


def example_path(pattern: str) -> str:
    """A concrete path that the glob `pattern` matches (`*` → `mpv`, `?` → `1`, `[ab]` → `a`)."""
    out = re.sub(r"\[(!?)([^\]]+)\]", _class_example, pattern)
    out = re.sub(r"\*+", "mpv", out).replace("?", "1")
    return out if fnmatch.fnmatchcase(out, pattern) else out.replace("[", "").replace("]", "")


def _class_example(m: re.Match[str]) -> str:
    chars = m.group(2)
    if m.group(1):  # [!abc]: any character but those
        return next(c for c in "mpvxz0123456789" if c not in chars)
    return chars[0]


def _socket_paths(pattern: str) -> tuple[list[str], str]:
    """The files `pattern` names now, and, when there are none, a word on a missing folder."""
    found = sorted(glob.glob(pattern)) if _has_magic(pattern) else [pattern]
    found = [p for p in found if os.path.lexists(p)]
    folder = os.path.dirname(pattern)
    missing = "" if found or os.path.isdir(folder) else f" (the folder {folder} does not exist)"
    return found, missing


async def _check_socket(path: str, wait: float) -> Check:
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return _fail("mpv", f"{path} is not a socket", "check [mpv] sockets")
        version = await probe_mpv(path, wait=wait)
    except ConnectionRefusedError:
        return _note(
            "mpv",
            f"{path} is stale: no mpv listens on it (one that ended left it behind)",
            "nothing to do; the next mpv with that socket replaces it",
        )
    except TimeoutError:
        return _note(
            "mpv",
            f"the mpv on {path} does not answer within {wait:g} s (stopped with Ctrl+Z?)",
        )
    except OSError as err:
        return _fail("mpv", f"cannot connect to {path}: {_why(err)}", "check its permissions")
    return _ok("mpv", f"{version} answers on {path}")


async def check_kodi(kodi: KodiConfig, *, wait: float = LOCAL_TIMEOUT) -> tuple[Check, ...]:
    """Kodi's JSON-RPC over TCP: connect, then `JSONRPC.Ping` must answer "pong"."""
    if not kodi.enabled:
        return ()
    where = f"{kodi.host}:{kodi.port}"
    try:
        async with asyncio.timeout(wait):
            reader, writer = await asyncio.open_connection(kodi.host, kodi.port)
    except TimeoutError:
        return (
            _fail(
                "kodi",
                f"Kodi not reachable on {where}: no answer within {wait:g} s",
                "check [kodi] host and any firewall between here and Kodi",
            ),
        )
    except OSError as err:
        return (_fail("kodi", f"Kodi not reachable on {where}: {_why(err)}", KODI_HINT),)
    try:
        async with asyncio.timeout(wait):
            answered = await _kodi_ping(reader, writer)
    except (TimeoutError, OSError):
        answered = False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if not answered:
        return (
            _fail(
                "kodi",
                f"something on {where} answers, but not as Kodi's JSON-RPC",
                "set [kodi] port to Kodi's JSON-RPC TCP port (9090 by default; "
                "not the web interface's 8080)",
            ),
        )
    return (_ok("kodi", f"Kodi answers on {where}"),)


async def _kodi_ping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Kodi's TCP JSON-RPC has no line breaks: objects are cut out of the stream as they end."""
    writer.write(b'{"jsonrpc":"2.0","method":"JSONRPC.Ping","id":1}')
    await writer.drain()
    decoder = json.JSONDecoder()
    buffer = ""
    while chunk := await reader.read(65536):
        try:
            buffer += chunk.decode()
        except UnicodeDecodeError:
            return False
        while buffer := buffer.lstrip():
            if not buffer.startswith("{"):
                return False
            try:
                message, end = decoder.raw_decode(buffer)
            except ValueError:
                break  # cut by the read
            buffer = buffer[end:]
            if isinstance(message, dict) and message.get("id") == 1:
                return bool(message.get("result") == "pong")
    return False


def check_plex(plex: PlexConfig, server: ServerConfig) -> tuple[Check, ...]:
    """The webhook URL to paste into Plex, with the secret masked: it never reaches a screen."""
    if not plex.enabled or plex.mode is PlexMode.LIVE:
        return ()
    host = server.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - comparing, not binding
        host = "<this machine's address>"
    elif ":" in host:
        host = f"[{host}]"
    url = f"http://{host}:{server.port}/plex/<your [plex] secret>"
    hint = "Plex webhooks need Plex Pass"
    if server.host in ("127.0.0.1", "localhost", "::1"):
        hint += (
            "; the listener takes only this machine's connections: if Plex runs elsewhere, "
            'set [server] host = "0.0.0.0"'
        )
    return (_ok("plex", f"paste {url} into Plex Web > Settings > Webhooks", hint),)


async def check_media_server(
    name: str, media: MediaServerConfig, server: ServerConfig, *, wait: float = LOCAL_TIMEOUT
) -> tuple[Check, ...]:
    """`[jellyfin]` or `[emby]`: the server answers, takes the key, and what it lets us see."""
    from trakt_scrobbled.config import MediaServerMode
    from trakt_scrobbled.players.jellyfin_server import Flavour, MediaServer, MediaServerError

    if not media.enabled:
        return ()
    flavour = Flavour(name)
    checks: list[Check] = []
    if media.mode is MediaServerMode.WEBHOOK:
        host = server.host
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - comparing, not binding
            host = "<this machine's address>"
        elif ":" in host:
            host = f"[{host}]"
        where = (
            "the Webhook plugin's Generic destination (the README gives its template)"
            if flavour is Flavour.JELLYFIN
            else "Emby > Settings > Webhooks (needs Emby Premiere)"
        )
        url = f"http://{host}:{server.port}/{name}/<your [{name}] secret>"
        checks.append(_ok(name, f"paste {url} into {where}"))
        if not (media.url and media.api_key):
            return tuple(checks)
    try:
        async with asyncio.timeout(wait), MediaServer(flavour, media.url, media.api_key) as api:
            info = await api.info()
            owner = await api.owner()
            sessions = await api.sessions()
    except TimeoutError:
        return (
            *checks,
            _fail(name, f"the {flavour.label} server at {media.url} did not answer in {wait:g} s"),
        )
    except MediaServerError as err:
        hint = f"check [{name}] url, and api_key ({flavour.label}: Dashboard > API Keys)"
        return (*checks, _fail(name, str(err), hint))
    version = str(info.get("Version") or "?")
    playing = sum(1 for s in sessions if isinstance(s.get("NowPlayingItem"), dict))
    whose = ", ".join(media.users) if media.users else ", ".join(owner.names) or "nobody"
    checks.append(
        _ok(
            name,
            f"{flavour.label} {version} at {media.url} takes the key; it shows {len(sessions)} "
            f"sessions ({playing} playing); scrobbling the plays of {whose}",
        )
    )
    if not owner.admin and media.mode is MediaServerMode.LIVE:
        checks.append(
            _fail(
                name,
                f"the api_key is {', '.join(owner.names)}'s, who is no administrator: the server "
                "does not let it follow sessions",
                f"use an API key ({flavour.label}: Dashboard > API Keys) or an administrator's",
            )
        )
    if not media.users and not owner.names:
        checks.append(
            _fail(name, "the key belongs to no user and the server has no administrator", "")
        )
    return tuple(checks)


async def check_plex_live(
    plex: PlexConfig, paths: Paths, *, wait: float = LOCAL_TIMEOUT
) -> tuple[Check, ...]:
    """Live mode: the server answers, takes the token and its websocket, and what it shows."""
    if not (plex.enabled and plex.mode is PlexMode.LIVE):
        return ()
    from trakt_scrobbled.players.plex_server import (
        PlexError,
        PlexForbidden,
        PlexServer,
        PlexUnauthorized,
    )
    from trakt_scrobbled.plextv import PlexLoginStore, live_credentials

    login_hint = "run `trakt-scrobbled plex login` (or set [plex] url and token)"
    creds = live_credentials(plex, PlexLoginStore(paths.plex_login_file))
    if not creds.url or not creds.token:
        return (_fail("plex", "live mode has no Plex server or token yet", login_hint),)
    checks: list[Check] = []
    async with PlexServer(
        creds.url,
        creds.token,
        client_identifier=creds.client_identifier,
        clock=SystemClock(),
        timeout=wait,
    ) as server:
        try:
            identity = await server.identity()
        except PlexError as err:
            return (_fail("plex", str(err), "check [plex] url, or run `plex login` again"),)
        version = identity.get("version")
        checks.append(
            _ok("plex", f"the Plex server at {server.host} answers (version {version or '?'})")
        )
        try:
            await server.open_notifications()
        except PlexUnauthorized:
            checks.append(_fail("plex", "the server refuses the token (401)", login_hint))
            return tuple(checks)
        except PlexError as err:
            checks.append(_fail("plex", f"no notification websocket: {err}"))
            return tuple(checks)
        checks.append(_ok("plex", "the token opens the server's notification websocket"))
        try:
            sessions = await server.sessions()
        except (PlexForbidden, PlexUnauthorized):
            hint = ""
            if plex.accounts:
                hint = "[plex] accounts cannot apply: this token sees no other account's plays"
            checks.append(
                _note(
                    "plex",
                    "the token is not the server owner's: only its own account's plays are "
                    "followed",
                    hint,
                )
            )
        except PlexError as err:
            checks.append(_fail("plex", f"cannot read the server's sessions: {err}"))
        else:
            whose = ", ".join(plex.accounts) if plex.accounts else "the owner's own"
            checks.append(
                _ok(
                    "plex",
                    f"the token is the server owner's: it sees every account's plays "
                    f"({len(sessions)} now); scrobbled: {whose}",
                )
            )
    return tuple(checks)


async def check_mpris(
    mpris: MprisConfig, env: Mapping[str, str], *, wait: float = LOCAL_TIMEOUT
) -> tuple[Check, ...]:
    """The MPRIS players on the session bus, and whether each says which file it plays."""
    if not mpris.enabled:
        return ()
    from trakt_scrobbled.players import mpris as bus

    address = bus.session_bus_address(env)
    if address is None:
        return (
            _fail(
                "mpris",
                "no session bus: DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR are unset",
                "run the daemon inside your desktop session (the systemd user service is)",
            ),
        )
    try:
        seen = await bus.survey(address, wait)
    except bus.MprisError as err:
        return (_fail("mpris", str(err), "run the daemon inside your desktop session"),)
    if not seen:
        return (
            _note(
                "mpris",
                "no MPRIS player on the session bus right now",
                "start VLC, Celluloid, Haruna or mpv with mpv-mpris and run the doctor again",
            ),
        )
    checks: list[Check] = []
    for player in seen:
        label = player.name.removeprefix(bus.PREFIX)
        if player.identity:
            label += f" ({player.identity})"
        if bus.name_matches(player.name, mpris.ignore):
            checks.append(_note("mpris", f"{label}: not followed ([mpris] ignore)"))
        elif mpris.players and not bus.name_matches(player.name, mpris.players):
            checks.append(_note("mpris", f"{label}: not followed (not in [mpris] players)"))
        elif player.error is not None:
            checks.append(_note("mpris", f"{label}: does not answer ({player.error})"))
        elif not player.playing:
            checks.append(
                _note(
                    "mpris",
                    f"{label}: {(player.status or 'idle').lower()}",
                    "play something in it to see whether it says which file it plays",
                )
            )
        elif player.usable == "url":
            checks.append(_ok("mpris", f"{label}: gives a usable URL (xesam:url)"))
        elif player.usable == "title":
            checks.append(
                _ok("mpris", f"{label}: gives no file URL, only a title (identified by name)")
            )
        else:
            checks.append(
                _note(
                    "mpris",
                    f"{label}: gives no usable xesam:url or title: its plays are ignored",
                    "add it to [mpris] ignore to silence this",
                )
            )
    return tuple(checks)


# --- the daemon and the service --------------------------------------------------------------


async def check_daemon(where: ControlPath, *, wait: float = LOCAL_TIMEOUT) -> tuple[Check, ...]:
    """Is the daemon answering on its control socket, and does it report trouble of its own?"""
    try:
        doc = await asyncio.to_thread(fetch_status, where, wait=wait)
    except NotRunning as err:
        return (_note("daemon", str(err), START_HINT),)
    except ControlError as err:
        return (_fail("daemon", str(err)),)
    uptime = doc.get("uptime")
    up = f", up {duration(uptime)}" if isinstance(uptime, int | float) else ""
    checks = [_ok("daemon", f"running (pid {doc.get('pid', '?')}{up})")]
    config = doc.get("config")
    problems = config.get("problems") if isinstance(config, dict) else None
    if problems:
        checks.append(
            _fail(
                "daemon",
                "it could not apply the edited config and goes on with the previous one",
                "fix the problems listed above; it reloads the file when saved",
            )
        )
    players = doc.get("players")
    for player in players if isinstance(players, list) else []:
        failing = player.get("failing") if isinstance(player, dict) else None
        if isinstance(failing, dict):
            checks.append(
                _fail(
                    "daemon",
                    f"its {player.get('name', '?')} adapter failed ({failing.get('error')}) "
                    "and is being restarted",
                    "the daemon's log (journalctl --user -u trakt-scrobbled) has the traceback",
                )
            )
    sender = doc.get("sender")
    if isinstance(sender, dict) and sender.get("state") == "client id rejected":
        checks.append(_fail("daemon", f"it cannot send: {sender.get('last_error')}"))
    return tuple(checks)


async def check_service(
    env: Mapping[str, str],
    *,
    systemctl: str | None = None,
    wait: float = LOCAL_TIMEOUT,
) -> tuple[Check, ...]:
    """The user unit installed, and its state when a systemd user manager is there.

    `systemctl` is the program to ask (None: none is installed).
    """
    unit = user_unit_dir(env) / UNIT_NAME
    checks: list[Check] = []
    installed = unit.is_file()
    if installed:
        checks.append(_ok("service", f"the user unit is installed at {unit}"))
    else:
        checks.append(
            _note(
                "service",
                f"the user unit is not installed ({unit})",
                "run `trakt-scrobbled service install` to start the daemon at every login",
            )
        )
    if systemctl is None:
        checks.append(
            _note("service", "no systemctl here", "run `trakt-scrobbled run` in your session")
        )
        return tuple(checks)
    state = await _unit_state(systemctl, env, wait)
    if state not in _UNIT_STATES:
        checks.append(
            _note(
                "service",
                f"no systemd user manager to ask ({state})",
                "run `trakt-scrobbled run` in your session",
            )
        )
    elif state in _ACTIVE:
        checks.append(_ok("service", f"trakt-scrobbled.service is {state}"))
    elif state == "failed":
        checks.append(
            _fail(
                "service",
                "trakt-scrobbled.service failed",
                "see `journalctl --user -u trakt-scrobbled -e`, then "
                "`systemctl --user restart trakt-scrobbled`",
            )
        )
    elif installed:
        checks.append(
            _note(
                "service",
                f"trakt-scrobbled.service is {state}",
                "systemctl --user enable --now trakt-scrobbled",
            )
        )
    return tuple(checks)


async def _unit_state(systemctl: str, env: Mapping[str, str], wait: float) -> str:
    """What `systemctl --user is-active` printed, or why it printed nothing useful."""
    try:
        proc = await asyncio.create_subprocess_exec(
            systemctl,
            "--user",
            "is-active",
            UNIT_NAME,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
        )
    except OSError as err:
        return f"cannot run {systemctl}: {_why(err)}"
    try:
        async with asyncio.timeout(wait):
            out, errout = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return f"systemctl did not answer within {wait:g} s"
    said = out.decode(errors="replace").strip()
    if said in _UNIT_STATES:
        return said
    text = (errout.decode(errors="replace").strip() or said).splitlines()
    return text[0] if text else f"systemctl exited with {proc.returncode}"


# --- all of them ------------------------------------------------------------------------------


async def diagnose(
    paths: Paths,
    env: Mapping[str, str],
    *,
    explicit_config: bool = False,
    now: float | None = None,
    systemctl: str | None = None,
    trakt_wait: float = TRAKT_TIMEOUT,
    local_wait: float = LOCAL_TIMEOUT,
    account: str | None = None,
) -> AsyncIterator[Check]:
    """Every check, in the order a user would fix things, each as soon as it is known.

    `systemctl` defaults to the one on `$PATH` of `env`. With `[accounts]`, each account's
    login is checked (`account`: that one only) instead of the single account's.
    """
    if now is None:
        now = time.time()
    if systemctl is None:
        systemctl = shutil.which("systemctl", path=env.get("PATH"))
    config, checks = check_config(paths.config_file, env, explicit=explicit_config)
    for check in checks:
        yield check
    for check in check_state(paths):
        yield check
    logins: list[tuple[Check, Token | None]] = []
    if config is not None and config.accounts:
        names = [a.name for a in config.accounts]
        if account is not None and account not in names:
            yield _fail("login", f"no account {account!r} in the config", "see [accounts.NAME]")
        for name in names:
            if account is None or name == account:
                file = paths.account_token_file(name)
                logins.append(check_token(file, now=now, account=name))
    else:
        logins.append(check_token(paths.token_file, now=now))
    for token_check, _ in logins:
        yield token_check
    if config is None:
        yield _note(
            "doctor",
            "Trakt and the players not checked: the config has problems",
            "fix the config, then run the doctor again",
        )
    else:
        trakt_checks = await check_trakt(config.trakt, wait=trakt_wait)
        for check in trakt_checks:
            yield check
        trakt_ok = bool(trakt_checks) and trakt_checks[-1].status is CheckStatus.OK
        for token_check, token in logins:
            if token is not None and trakt_ok:
                verdict = await check_login(config.trakt, token, wait=trakt_wait)
                yield replace(verdict, name=token_check.name)
        for check in await check_mpv(config.mpv, wait=local_wait):
            yield check
        for check in await check_kodi(config.kodi, wait=local_wait):
            yield check
        for check in check_plex(config.plex, config.server):
            yield check
        for check in await check_plex_live(config.plex, paths, wait=local_wait):
            yield check
        for check in await check_mpris(config.mpris, env, wait=local_wait):
            yield check
        for name, media in (("jellyfin", config.jellyfin), ("emby", config.emby)):
            for check in await check_media_server(name, media, config.server, wait=local_wait):
                yield check
    for check in await check_daemon(control_path(env, paths), wait=local_wait):
        yield check
    for check in await check_service(env, systemctl=systemctl, wait=local_wait):
        yield check


def _why(err: OSError) -> str:
    """`Connection refused` rather than asyncio's `Connect call failed ('127.0.0.1', 9090)`."""
    if isinstance(err.errno, int) and err.errno > 0:
        return os.strerror(err.errno)
    return err.strerror or str(err) or type(err).__name__
