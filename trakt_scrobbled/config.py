"""The TOML config file turned into a typed, frozen `Config`, or every problem in it at once.

Users edit the file by hand, so a load either succeeds or raises one `ConfigError` listing every
problem with its key path (`mpv.sockets[2]`) and, where it can be found, its line. Messages name
secret keys but never show their values, and secrets stay out of `repr()` because configs may
be logged.
"""

from __future__ import annotations

import codecs
import difflib
import math
import os
import re
import tomllib
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, TypeVar

from trakt_scrobbled.events import Ids
from trakt_scrobbled.paths import home_dir
from trakt_scrobbled.redact import mask_url, mask_urls

__all__ = [
    "IMPLICIT_ACCOUNT",
    "AccountConfig",
    "Config",
    "ConfigError",
    "KodiConfig",
    "LogLevel",
    "LoggingConfig",
    "MediaServerConfig",
    "MediaServerMode",
    "MprisConfig",
    "MpvConfig",
    "NotifyConfig",
    "Override",
    "OverrideType",
    "PlexConfig",
    "PlexMode",
    "Problem",
    "ScrobbleConfig",
    "ServerConfig",
    "TraktConfig",
    "diff_sections",
    "find_override",
    "load_config",
    "parse_config",
]

_T = TypeVar("_T")
_Key = tuple[str | int, ...]

ENV_CLIENT_ID = "TRAKT_CLIENT_ID"
ENV_CLIENT_SECRET = "TRAKT_CLIENT_SECRET"  # noqa: S105 - a variable name
MIN_SECRET_LENGTH = 16


# ---------------------------------------------------------------------------- the values


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def numeric(self) -> int:
        """The `logging` module's number for this level."""
        return {"debug": 10, "info": 20, "warning": 30, "error": 40}[self.value]


class MediaServerMode(StrEnum):
    """How a Jellyfin or Emby server is followed."""

    LIVE = "live"
    """Its WebSocket and `/Sessions`, with an API key (no plugin needed)."""
    WEBHOOK = "webhook"
    """It posts to the local listener (Jellyfin's Webhook plugin, Emby Premiere's webhooks)."""


class PlexMode(StrEnum):
    WEBHOOK = "webhook"
    """Plex pushes webhooks to the local listener (needs Plex Pass)."""
    LIVE = "live"
    """We follow the server's notification websocket (any Plex account)."""


class OverrideType(StrEnum):
    MOVIE = "movie"
    SHOW = "show"


@dataclass(frozen=True, slots=True, kw_only=True)
class TraktConfig:
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    api_url: str = "https://api.trakt.tv"
    """Without a trailing slash."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScrobbleConfig:
    watched_threshold: float = 80.0
    """Percent: a stop at or above it marks the item watched."""
    seek_debounce: float = 2.0
    """Deprecated and ignored (still read, so older configs load): a seek is a start at once,
    and the outbox coalesces a burst (an unsent start is replaced by a newer one)."""
    min_duration: float = 120.0
    """Seconds; shorter files are never scrobbled."""
    history_after: float = 60.0
    """Seconds: a watch not delivered by then goes to /sync/history with its real time."""
    rewatch_window: float = 21600.0
    """Seconds: a second watch of the same item within this is the same watch, not a rewatch."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MpvConfig:
    enabled: bool = True
    sockets: tuple[str, ...] = ()
    """Absolute paths or glob patterns, with `~` and `$VARS` already expanded."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KodiConfig:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 9090
    include_pvr: bool = False
    """Scrobble Live TV / PVR channels and add-on streams too (off: they are rarely on Trakt)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlexConfig:
    enabled: bool = False
    mode: PlexMode = PlexMode.WEBHOOK
    secret: str = field(default="", repr=False)
    """The webhook URL's secret (webhook mode only)."""
    accounts: tuple[str, ...] = ()
    """Account names whose plays count; empty means only the owner's."""
    url: str = ""
    """The Plex server; empty when not set (live mode then takes the one `plex login` chose)."""
    token: str = field(default="", repr=False)
    """Empty: live mode takes the one `plex login` stored."""
    plex_tv_url: str = "https://plex.tv"
    """Where `plex login` asks for a PIN and the account's servers (a test server in tests)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaServerConfig:
    """`[jellyfin]` or `[emby]`: the two take the same keys."""

    enabled: bool = False
    mode: MediaServerMode = MediaServerMode.LIVE
    url: str = ""
    """The server, e.g. `http://127.0.0.1:8096`; required in live mode."""
    api_key: str = field(default="", repr=False)
    """An API key (Dashboard > API Keys) or an administrator's access token; live mode."""
    secret: str = field(default="", repr=False)
    """The webhook URL's secret; webhook mode."""
    users: tuple[str, ...] = ()
    """User names whose plays count; empty means the key's own user (or, for a server API
    key, the server's administrators)."""


MPRIS_IGNORE: tuple[str, ...] = (
    "firefox*",
    "chromium*",
    "chrome*",
    "brave*",
    "vivaldi*",
    "opera*",
    "microsoft-edge*",
    "plasma-browser-integration",
    "spotify",
)
"""Browsers (tabs publish MPRIS with no file) and music players, unless the user says otherwise."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MprisConfig:
    enabled: bool = False
    players: tuple[str, ...] = ()
    """Bus-name patterns (`vlc`, `celluloid*`) to follow; empty follows every player."""
    ignore: tuple[str, ...] = MPRIS_IGNORE
    """Bus-name patterns never followed; wins over `players`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8642


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggingConfig:
    level: LogLevel = LogLevel.INFO


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyConfig:
    """Where a person hears of what needs them: a login, a parked queue, a failed scrobble."""

    desktop: bool = True
    apprise: tuple[str, ...] = ()
    """Apprise URLs (`pip install trakt-scrobbled[notify]`); they hold secrets, never logged."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Override:
    """A user's fix for a wrong match: files whose full path matches `pattern` are this item."""

    pattern: str
    """A glob (`fnmatch`, case-sensitive; `*` also matches `/`), a leading `~` expanded."""
    type: OverrideType
    ids: Ids

    def matches(self, path: str) -> bool:
        return fnmatchcase(path, self.pattern)


IMPLICIT_ACCOUNT = ""
"""The one account of a config without `[accounts]`: today's `token.json`, today's rows."""

ACCOUNT_RULE_KEYS: tuple[str, ...] = ("plex", "jellyfin", "kodi", "mpv", "mpris")


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountConfig:
    """One Trakt account of the household and the plays routed to it (router.py)."""

    name: str
    default: bool = False
    """The account for plays that no rule routes."""
    plex: tuple[str, ...] = ()
    """Plex account names or ids (case-insensitive)."""
    jellyfin: tuple[str, ...] = ()
    """Jellyfin/Emby user names (case-insensitive)."""
    kodi: tuple[str, ...] = ()
    """Kodi hosts: "host" (any port) or "host:port", lower-cased; either may end in "/PROFILE",
    then only plays of that Kodi profile (its name, case-insensitive) match."""
    mpv: tuple[str, ...] = ()
    """mpv socket paths or globs, `~` and `$VARS` expanded."""
    mpris: tuple[str, ...] = ()
    """MPRIS bus-name patterns."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    trakt: TraktConfig = field(default_factory=TraktConfig)
    scrobble: ScrobbleConfig = field(default_factory=ScrobbleConfig)
    mpv: MpvConfig = field(default_factory=MpvConfig)
    kodi: KodiConfig = field(default_factory=KodiConfig)
    plex: PlexConfig = field(default_factory=PlexConfig)
    jellyfin: MediaServerConfig = field(default_factory=MediaServerConfig)
    emby: MediaServerConfig = field(default_factory=MediaServerConfig)
    mpris: MprisConfig = field(default_factory=MprisConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    overrides: tuple[Override, ...] = ()
    """In file order; the first match wins."""
    accounts: tuple[AccountConfig, ...] = ()
    """The household, in file order; empty: one implicit account (`IMPLICIT_ACCOUNT`)."""
    source: Path | None = field(default=None, compare=False)
    """The file this came from; None when no file was read."""


SECTIONS: tuple[str, ...] = tuple(f.name for f in fields(Config) if f.name != "source")
"""The top-level tables of the file, in order."""

OVERRIDE_ID_KEYS: tuple[str, ...] = ("trakt", "imdb", "tmdb", "tvdb", "slug")
OVERRIDE_KEYS: tuple[str, ...] = ("pattern", "type", *OVERRIDE_ID_KEYS)


def find_override(overrides: Iterable[Override], path: str) -> Override | None:
    """The first override whose pattern matches `path`."""
    return next((o for o in overrides if o.matches(path)), None)


def diff_sections(old: Config, new: Config) -> frozenset[str]:
    """The top-level sections that differ, so a reload restarts only what they affect."""
    return frozenset(name for name in SECTIONS if getattr(old, name) != getattr(new, name))


# ---------------------------------------------------------------------------- the errors


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the config; `key` is empty for problems with the file as a whole."""

    key: str
    message: str
    line: int | None = None
    column: int | None = None

    def render(self, source: Path | None = None) -> str:
        """`FILE:LINE[:COL]: KEY: MESSAGE`, leaving out what is unknown."""
        where = str(source) if source is not None else ""
        if where and self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        parts = [p for p in (where, self.key, self.message) if p]
        return mask_urls(": ".join(parts))


class ConfigError(Exception):
    """The config cannot be used; `problems` lists everything wrong, ordered by line."""

    def __init__(self, problems: Iterable[Problem], source: Path | None = None) -> None:
        ordered = sorted(problems, key=lambda p: (p.line is None, p.line or 0))
        self.problems: tuple[Problem, ...] = tuple(ordered)
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(p.render(self.source) for p in self.problems)


# ---------------------------------------------------------------------------- loading


def load_config(path: Path | None, env: Mapping[str, str], *, explicit: bool = False) -> Config:
    """Read and validate the config file, then apply the environment's Trakt credentials.

    A missing file means all defaults, so the daemon starts with no config, unless the user
    named the file (`explicit`, e.g. `--config PATH`): then it is an error.
    """
    if path is None:
        return _apply_env(Config(), env)
    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        if explicit:
            raise ConfigError([Problem("", "file not found")], path) from err
        return _apply_env(Config(), env)
    except IsADirectoryError as err:
        raise ConfigError([Problem("", "is a directory, not a config file")], path) from err
    except PermissionError as err:
        raise ConfigError([Problem("", "cannot read it: permission denied")], path) from err
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ConfigError([Problem("", f"cannot read it: {reason}")], path) from err

    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        problem = Problem("", f"is not UTF-8 text (invalid byte at offset {err.start})", line)
        raise ConfigError([problem], path) from err
    return parse_config(text, env, source=path)


def parse_config(text: str, env: Mapping[str, str], *, source: Path | None = None) -> Config:
    """Validate TOML text; `source` only names the file in problems and on the result."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([_syntax_problem(err, text)], source) from err
    checker = _Checker(_locate_keys(text))
    config = _build(raw, env, checker, source)
    if checker.problems:
        raise ConfigError(checker.problems, source)
    return _apply_env(config, env)


def _apply_env(config: Config, env: Mapping[str, str]) -> Config:
    """Non-empty `TRAKT_CLIENT_ID` / `TRAKT_CLIENT_SECRET` win over the file; with neither
    anywhere, the identity a packager bundled (identity.py) is used."""
    client_id = env.get(ENV_CLIENT_ID, "").strip()
    client_secret = env.get(ENV_CLIENT_SECRET, "").strip()
    if not client_id and not client_secret:
        if config.trakt.client_id or config.trakt.client_secret:
            return config
        from trakt_scrobbled.identity import bundled_identity

        bundled = bundled_identity()
        if bundled is None:
            return config
        trakt = replace(
            config.trakt, client_id=bundled.client_id, client_secret=bundled.client_secret
        )
        return replace(config, trakt=trakt)
    trakt = replace(
        config.trakt,
        client_id=client_id or config.trakt.client_id,
        client_secret=client_secret or config.trakt.client_secret,
    )
    return replace(config, trakt=trakt)


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_AT_END = re.compile(r"\s*\(at end of document\)\s*$")


def _syntax_problem(err: tomllib.TOMLDecodeError, text: str) -> Problem:
    message = str(err)
    line: int | None = None
    column: int | None = None
    if match := _TOML_POSITION.search(message):
        line, column = int(match.group(1)), int(match.group(2))
        message = message[: match.start()]
    elif match := _TOML_AT_END.search(message):
        line = text.count("\n") + 1
        message = message[: match.start()] + " at end of file"
    return Problem("", f"invalid TOML: {message}", line, column)


# ---------------------------------------------------------------------------- validation


def _render_key(path: _Key) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        name = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else _quote(part)
        out += f".{name}" if out else name
    return out


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "float"),
    (str, "string"),
    (list, "array"),
    (dict, "table"),
)


def _type_name(value: object) -> str:
    for kind, name in _TYPE_NAMES:
        if isinstance(value, kind):
            return name
    return type(value).__name__  # datetime, date, time: the TOML names match


def _got(value: object, *, secret: bool = False) -> str:
    """`string "80"`: the type, plus the value when it is safe and short to show."""
    name = _type_name(value)
    if secret or isinstance(value, list | dict):
        return name
    if isinstance(value, bool):
        return f"{name} {str(value).lower()}"
    shown = _quote(value) if isinstance(value, str) else str(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{name} {shown}"


def _show(value: str) -> str:
    return _quote(value if len(value) <= 60 else value[:57] + "...")


class _Checker:
    """Collects problems instead of stopping at the first, each with the best line it can find."""

    def __init__(self, lines: Mapping[_Key, int]) -> None:
        self._lines = lines
        self.problems: list[Problem] = []

    def add(self, path: _Key, message: str) -> None:
        self.problems.append(Problem(_render_key(path), message, self._line(path)))

    def _line(self, path: _Key) -> int | None:
        """The key's own line, else its nearest ancestor's (a table header, an inline table)."""
        for end in range(len(path), 0, -1):
            if (line := self._lines.get(path[:end])) is not None:
                return line
        return None

    def unknown_keys(self, table: Mapping[str, object], path: _Key, known: Sequence[str]) -> None:
        for key, value in table.items():
            if key in known:
                continue
            what = "unknown table" if _is_table(value) else "unknown key"
            close = difflib.get_close_matches(key, known, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            self.add((*path, key), what + hint)

    def section(self, root: Mapping[str, object], name: str) -> Mapping[str, object]:
        value = root.get(name, {})
        if isinstance(value, dict):
            return value
        self.add((name,), f"expected a table ([{name}]), got {_got(value)}")
        return {}

    def typed(
        self,
        table: Mapping[str, object],
        path: _Key,
        kind: type[_T],
        *,
        secret: bool = False,
    ) -> _T | None:
        """The value at `path` if present and of `kind` (an int is fine for a float), else None."""
        key = path[-1]
        if not isinstance(key, str) or key not in table:
            return None
        return self.check_type(table[key], path, kind, secret=secret)

    def check_type(
        self, value: object, path: _Key, kind: type[_T], *, secret: bool = False
    ) -> _T | None:
        ok: bool
        if kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if ok:
                value = float(value)  # type: ignore[arg-type]
        else:
            ok = isinstance(value, kind)
        if ok:
            return value  # type: ignore[return-value]
        expected = dict(_TYPE_NAMES).get(kind, kind.__name__)
        if kind is float:
            expected = "number"
        self.add(path, f"expected {expected}, got {_got(value, secret=secret)}")
        return None

    def in_range(self, path: _Key, value: float, low: float | None, high: float | None) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            self.add(path, f"must be a finite number, got {value}")
            return False
        if (low is not None and value < low) or (high is not None and value > high):
            shown = _number(value)
            if low is not None and high is not None:
                self.add(path, f"must be between {_number(low)} and {_number(high)}, got {shown}")
            elif low is not None:
                self.add(path, f"must be at least {_number(low)}, got {shown}")
            else:
                self.add(path, f"must be at most {_number(high or 0)}, got {shown}")
            return False
        return True

    def boolean(self, table: Mapping[str, object], path: _Key, default: bool) -> bool:
        value = self.typed(table, path, bool)
        return default if value is None else value

    def integer(
        self,
        table: Mapping[str, object],
        path: _Key,
        default: int,
        low: int | None = None,
        high: int | None = None,
    ) -> int:
        value = self.typed(table, path, int)
        if value is None or not self.in_range(path, value, low, high):
            return default
        return value

    def number(
        self,
        table: Mapping[str, object],
        path: _Key,
        default: float,
        low: float | None = None,
        high: float | None = None,
    ) -> float:
        value = self.typed(table, path, float)
        if value is None or not self.in_range(path, value, low, high):
            return default
        return value

    def string(
        self,
        table: Mapping[str, object],
        path: _Key,
        default: str,
        *,
        secret: bool = False,
        non_empty: bool = False,
    ) -> str:
        value = self.typed(table, path, str, secret=secret)
        if value is None:
            return default
        if non_empty and not value.strip():
            self.add(path, "must not be empty")
            return default
        return value

    def string_list(self, table: Mapping[str, object], path: _Key) -> tuple[tuple[_Key, str], ...]:
        """Non-empty strings with their element paths, so callers can check each further."""
        items = self.typed(table, path, list)
        if items is None:
            return ()
        out: list[tuple[_Key, str]] = []
        for index, item in enumerate(items):
            item_path = (*path, index)
            text = self.check_type(item, item_path, str)
            if text is None:
                continue
            if not text.strip():
                self.add(item_path, "must not be empty")
                continue
            out.append((item_path, text))
        return tuple(out)


def _is_table(value: object) -> bool:
    return isinstance(value, dict) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
    )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _known(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _build(
    raw: Mapping[str, Any], env: Mapping[str, str], c: _Checker, source: Path | None
) -> Config:
    c.unknown_keys(raw, (), SECTIONS)
    return Config(
        trakt=_trakt(c.section(raw, "trakt"), c),
        scrobble=_scrobble(c.section(raw, "scrobble"), c),
        mpv=_mpv(c.section(raw, "mpv"), c, env),
        kodi=_kodi(c.section(raw, "kodi"), c),
        plex=_plex(c.section(raw, "plex"), c),
        jellyfin=_media_server("jellyfin", c.section(raw, "jellyfin"), c),
        emby=_media_server("emby", c.section(raw, "emby"), c),
        mpris=_mpris(c.section(raw, "mpris"), c),
        server=_server(c.section(raw, "server"), c),
        logging=_logging(c.section(raw, "logging"), c),
        notify=_notify(c.section(raw, "notify"), c),
        overrides=_overrides(raw.get("overrides"), c, env),
        accounts=_accounts(raw.get("accounts"), c, env),
        source=source,
    )


def _trakt(t: Mapping[str, object], c: _Checker) -> TraktConfig:
    d = TraktConfig()
    c.unknown_keys(t, ("trakt",), _known(TraktConfig))
    client_id = c.string(t, ("trakt", "client_id"), d.client_id)
    client_secret = c.string(t, ("trakt", "client_secret"), d.client_secret, secret=True)
    for key, value in (("client_id", client_id), ("client_secret", client_secret)):
        if value != value.strip():
            c.add(("trakt", key), "has spaces around it (a copy-and-paste slip?)")
    api_url = c.string(t, ("trakt", "api_url"), d.api_url)
    if _url_problem(api_url, c, ("trakt", "api_url")):
        api_url = d.api_url
    return TraktConfig(
        client_id=client_id, client_secret=client_secret, api_url=api_url.rstrip("/")
    )


def _url_problem(url: str, c: _Checker, path: _Key) -> bool:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        c.add(path, f"must be an http:// or https:// URL, got {_show(mask_url(url))}")
        return True
    if parts.query or parts.fragment:
        c.add(path, f"must not have a query or fragment, got {_show(mask_url(url))}")
        return True
    return False


def _scrobble(t: Mapping[str, object], c: _Checker) -> ScrobbleConfig:
    d = ScrobbleConfig()
    c.unknown_keys(t, ("scrobble",), _known(ScrobbleConfig))
    return ScrobbleConfig(
        watched_threshold=c.number(
            t, ("scrobble", "watched_threshold"), d.watched_threshold, 80, 100
        ),
        seek_debounce=c.number(t, ("scrobble", "seek_debounce"), d.seek_debounce, 0, 60),
        min_duration=c.number(t, ("scrobble", "min_duration"), d.min_duration, 0),
        history_after=c.number(t, ("scrobble", "history_after"), d.history_after, 0, 86400),
        rewatch_window=c.number(t, ("scrobble", "rewatch_window"), d.rewatch_window, 0),
    )


_VAR = re.compile(r"\$(?:(\w+)|\{(\w+)\})")


def _expand(value: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """`~` and `$VAR`/`${VAR}` expanded from `env`; also the names that were not set."""
    missing: list[str] = []

    def var(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in env:
            return env[name]
        missing.append(name)
        return match.group(0)

    return _VAR.sub(var, _expand_home(value, env)), missing


def _mpv(t: Mapping[str, object], c: _Checker, env: Mapping[str, str]) -> MpvConfig:
    d = MpvConfig()
    c.unknown_keys(t, ("mpv",), _known(MpvConfig))
    sockets: list[str] = []
    for path, text in c.string_list(t, ("mpv", "sockets")):
        expanded, missing = _expand(text.strip(), env)
        if missing:
            names = ", ".join(f"${name}" for name in missing)
            c.add(path, f"{names} not set in the environment")
        elif not os.path.isabs(expanded):
            c.add(path, f"must be an absolute path or glob (after ~ and $VARS), got {_show(text)}")
        else:
            sockets.append(expanded)
    return MpvConfig(
        enabled=c.boolean(t, ("mpv", "enabled"), d.enabled),
        sockets=tuple(sockets),
    )


def _kodi(t: Mapping[str, object], c: _Checker) -> KodiConfig:
    d = KodiConfig()
    c.unknown_keys(t, ("kodi",), _known(KodiConfig))
    return KodiConfig(
        enabled=c.boolean(t, ("kodi", "enabled"), d.enabled),
        host=c.string(t, ("kodi", "host"), d.host, non_empty=True).strip(),
        port=c.integer(t, ("kodi", "port"), d.port, 1, 65535),
        include_pvr=c.boolean(t, ("kodi", "include_pvr"), d.include_pvr),
    )


_URL_SAFE = re.compile(r"[A-Za-z0-9._~-]+")


def _plex(t: Mapping[str, object], c: _Checker) -> PlexConfig:
    d = PlexConfig()
    c.unknown_keys(t, ("plex",), _known(PlexConfig))
    enabled = c.boolean(t, ("plex", "enabled"), d.enabled)
    mode_key: _Key = ("plex", "mode")
    mode_text = c.string(t, mode_key, d.mode.value)
    try:
        mode = PlexMode(mode_text.strip().lower())
    except ValueError:
        c.add(mode_key, f'must be "webhook" or "live", got {_show(mode_text)}')
        mode = d.mode
    secret_key: _Key = ("plex", "secret")
    secret = c.string(t, secret_key, d.secret, secret=True)
    if not secret:
        if enabled and mode is PlexMode.WEBHOOK:
            c.add(
                secret_key,
                "required when plex.enabled is true (the webhook URL is "
                "http://HOST:PORT/plex/SECRET); use at least "
                f"{MIN_SECRET_LENGTH} random characters "
                '(or mode = "live": no webhooks, no Plex Pass needed)',
            )
    elif not _URL_SAFE.fullmatch(secret):
        c.add(secret_key, "may only hold letters, digits and - _ . ~ (it goes into a URL)")
    elif len(secret) < MIN_SECRET_LENGTH:
        c.add(
            secret_key,
            f"too short: use at least {MIN_SECRET_LENGTH} random characters, e.g. from "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(24))'`",
        )
    accounts = tuple(text.strip() for _, text in c.string_list(t, ("plex", "accounts")))
    url = c.string(t, ("plex", "url"), d.url).strip()
    if url and _url_problem(url, c, ("plex", "url")):
        url = d.url
    token = c.string(t, ("plex", "token"), d.token, secret=True)
    if token != token.strip():
        c.add(("plex", "token"), "has spaces around it (a copy-and-paste slip?)")
    plex_tv_url = c.string(t, ("plex", "plex_tv_url"), d.plex_tv_url).strip()
    if _url_problem(plex_tv_url, c, ("plex", "plex_tv_url")):
        plex_tv_url = d.plex_tv_url
    return PlexConfig(
        enabled=enabled,
        mode=mode,
        secret=secret,
        accounts=accounts,
        url=url.rstrip("/"),
        token=token,
        plex_tv_url=plex_tv_url.rstrip("/"),
    )


def _media_server(name: str, t: Mapping[str, object], c: _Checker) -> MediaServerConfig:
    d = MediaServerConfig()
    c.unknown_keys(t, (name,), _known(MediaServerConfig))
    enabled = c.boolean(t, (name, "enabled"), d.enabled)
    mode_key: _Key = (name, "mode")
    mode_text = c.string(t, mode_key, d.mode.value)
    try:
        mode = MediaServerMode(mode_text.strip().lower())
    except ValueError:
        c.add(mode_key, f'must be "live" or "webhook", got {_show(mode_text)}')
        mode = d.mode
    url = c.string(t, (name, "url"), d.url).strip()
    if url and _url_problem(url, c, (name, "url")):
        url = d.url
    api_key = c.string(t, (name, "api_key"), d.api_key, secret=True)
    if api_key != api_key.strip():
        c.add((name, "api_key"), "has spaces around it (a copy-and-paste slip?)")
    elif api_key and not _URL_SAFE.fullmatch(api_key):
        c.add((name, "api_key"), "may only hold letters, digits and - _ . ~")
    secret_key: _Key = (name, "secret")
    secret = c.string(t, secret_key, d.secret, secret=True)
    if secret and not _URL_SAFE.fullmatch(secret):
        c.add(secret_key, "may only hold letters, digits and - _ . ~ (it goes into a URL)")
    elif secret and len(secret) < MIN_SECRET_LENGTH:
        c.add(secret_key, f"too short: use at least {MIN_SECRET_LENGTH} random characters")
    users = tuple(text.strip() for _, text in c.string_list(t, (name, "users")))
    if enabled and mode is MediaServerMode.LIVE:
        if not url:
            c.add((name, "url"), f'required when {name}.mode is "live"')
        if not api_key:
            c.add((name, "api_key"), f'required when {name}.mode is "live"')
    if enabled and mode is MediaServerMode.WEBHOOK:
        if not secret:
            c.add(
                secret_key,
                f'required when {name}.mode is "webhook" (the webhook URL is '
                f"http://HOST:PORT/{name}/SECRET); use at least {MIN_SECRET_LENGTH} random "
                "characters",
            )
        if not users and not (url and api_key):
            c.add(
                (name, "users"),
                "list the user names whose plays count (or set url and api_key, so that the "
                "server's administrators can be asked for)",
            )
    return MediaServerConfig(
        enabled=enabled,
        mode=mode,
        url=url.rstrip("/"),
        api_key=api_key,
        secret=secret,
        users=users,
    )


_BUS_PATTERN = re.compile(r"[A-Za-z0-9_.*?\[\]!-]+")
_MPRIS_PREFIX = "org.mpris.MediaPlayer2."


def _mpris(t: Mapping[str, object], c: _Checker) -> MprisConfig:
    d = MprisConfig()
    c.unknown_keys(t, ("mpris",), _known(MprisConfig))

    def patterns(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        if key not in t:
            return default
        out: list[str] = []
        for path, text in c.string_list(t, ("mpris", key)):
            pattern = text.strip().removeprefix(_MPRIS_PREFIX)
            if not _BUS_PATTERN.fullmatch(pattern):
                c.add(
                    path,
                    "a D-Bus name pattern may only hold letters, digits, _ - . and the glob "
                    f"characters * ? [ ] !, got {_show(text)}",
                )
            else:
                out.append(pattern)
        return tuple(dict.fromkeys(out))

    return MprisConfig(
        enabled=c.boolean(t, ("mpris", "enabled"), d.enabled),
        players=patterns("players", d.players),
        ignore=patterns("ignore", d.ignore),
    )


def _server(t: Mapping[str, object], c: _Checker) -> ServerConfig:
    d = ServerConfig()
    c.unknown_keys(t, ("server",), _known(ServerConfig))
    return ServerConfig(
        host=c.string(t, ("server", "host"), d.host, non_empty=True).strip(),
        port=c.integer(t, ("server", "port"), d.port, 1, 65535),
    )


def _logging(t: Mapping[str, object], c: _Checker) -> LoggingConfig:
    d = LoggingConfig()
    c.unknown_keys(t, ("logging",), _known(LoggingConfig))
    path: _Key = ("logging", "level")
    text = c.string(t, path, d.level.value)
    try:
        level = LogLevel(text.strip().lower())
    except ValueError:
        choices = ", ".join(level.value for level in LogLevel)
        c.add(path, f"must be one of {choices}, got {_show(text)}")
        level = d.level
    return LoggingConfig(level=level)


def _notify(t: Mapping[str, object], c: _Checker) -> NotifyConfig:
    d = NotifyConfig()
    c.unknown_keys(t, ("notify",), _known(NotifyConfig))
    urls: list[str] = []
    for path, text in c.string_list(t, ("notify", "apprise")):
        url = text.strip()
        if "://" not in url:
            # Never echo the value: an Apprise URL carries its service's token.
            c.add(path, "is not an Apprise URL (scheme://...)")
            continue
        urls.append(url)
    return NotifyConfig(desktop=c.boolean(t, ("notify", "desktop"), d.desktop), apprise=tuple(urls))


def _overrides(value: object, c: _Checker, env: Mapping[str, str]) -> tuple[Override, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        c.add(("overrides",), f"expected an array of tables ([[overrides]]), got {_got(value)}")
        return ()
    out: list[Override] = []
    for index, item in enumerate(value):
        path: _Key = ("overrides", index)
        if not isinstance(item, dict):
            c.add(path, f"expected a table, got {_got(item)}")
            continue
        override = _override(item, path, c, env)
        if override is not None:
            out.append(override)
    return tuple(out)


_IMDB = re.compile(r"tt\d{7,}")
_WILDCARD_START = ("/", "*", "?", "[")


def _override(
    t: Mapping[str, object], path: _Key, c: _Checker, env: Mapping[str, str]
) -> Override | None:
    before = len(c.problems)
    c.unknown_keys(t, path, OVERRIDE_KEYS)

    pattern = c.string(t, (*path, "pattern"), "", non_empty=True)
    if "pattern" not in t:
        c.add((*path, "pattern"), 'required: a glob matched against the full path, e.g. "*/Show/*"')
    elif pattern:
        if pattern.startswith("~"):
            pattern = _expand_home(pattern, env)
        if not pattern.startswith(_WILDCARD_START):
            c.add(
                (*path, "pattern"),
                "is matched against the full path: start it with / or ~ or *, "
                f"got {_show(pattern)}",
            )

    kind: OverrideType | None = None
    type_path = (*path, "type")
    text = c.typed(t, type_path, str)
    if "type" not in t:
        c.add(type_path, 'required: "movie" or "show"')
    elif text is not None:
        try:
            kind = OverrideType(text.strip().lower())
        except ValueError:
            c.add(type_path, f'must be "movie" or "show", got {_show(text)}')

    trakt = _positive_id(t, (*path, "trakt"), c)
    tmdb = _positive_id(t, (*path, "tmdb"), c)
    tvdb = _positive_id(t, (*path, "tvdb"), c)
    imdb = c.typed(t, (*path, "imdb"), str)
    if imdb is not None and not _IMDB.fullmatch(imdb.strip()):
        c.add((*path, "imdb"), f'must look like "tt0944947", got {_show(imdb)}')
        imdb = None
    slug = c.typed(t, (*path, "slug"), str)
    if slug is not None and (not slug.strip() or re.search(r"[\s/]", slug.strip())):
        c.add((*path, "slug"), f'must be a Trakt slug like "game-of-thrones", got {_show(slug)}')
        slug = None
    if not any(key in t for key in OVERRIDE_ID_KEYS):
        c.add(path, "needs at least one id: " + ", ".join(OVERRIDE_ID_KEYS))

    if len(c.problems) != before or kind is None:
        return None
    ids = Ids(
        trakt=trakt,
        slug=slug.strip() if slug else None,
        imdb=imdb.strip() if imdb else None,
        tmdb=tmdb,
        tvdb=tvdb,
    )
    return Override(pattern=pattern, type=kind, ids=ids)


_ACCOUNT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
ACCOUNT_KEYS: tuple[str, ...] = ("default", *ACCOUNT_RULE_KEYS)


def _accounts(value: object, c: _Checker, env: Mapping[str, str]) -> tuple[AccountConfig, ...]:
    """`[accounts.NAME]` tables; a name becomes a file name (`token-NAME.json`), so it is
    kept to lower-case letters, digits, `_` and `-`."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        c.add(("accounts",), f"expected a table of accounts ([accounts.NAME]), got {_got(value)}")
        return ()
    out: list[AccountConfig] = []
    for name, table in value.items():
        path: _Key = ("accounts", name)
        if not _ACCOUNT_NAME.fullmatch(name):
            c.add(
                path,
                "an account name may hold only lower-case letters, digits, _ and - "
                f"(at most 32, starting with a letter or digit), got {_show(name)}",
            )
            continue
        if not isinstance(table, dict):
            c.add(path, f"expected a table ([accounts.{name}]), got {_got(table)}")
            continue
        account = _account(name, table, path, c, env)
        if account is not None:
            out.append(account)
    defaults = [a.name for a in out if a.default]
    if len(defaults) > 1:
        for name in defaults[1:]:
            c.add(
                ("accounts", name, "default"),
                f'only one account can be the default, and "{defaults[0]}" already is',
            )
    return tuple(out)


def _account(
    name: str, t: Mapping[str, object], path: _Key, c: _Checker, env: Mapping[str, str]
) -> AccountConfig | None:
    before = len(c.problems)
    c.unknown_keys(t, path, ACCOUNT_KEYS)
    default = c.boolean(t, (*path, "default"), False)
    names = {
        key: tuple(dict.fromkeys(text.strip() for _, text in c.string_list(t, (*path, key))))
        for key in ("plex", "jellyfin")
    }
    kodi: list[str] = []
    for item_path, text in c.string_list(t, (*path, "kodi")):
        rule = _kodi_rule(text)
        if rule is None:
            c.add(
                item_path,
                'must be a host or "host:port", optionally followed by "/PROFILE" (a Kodi '
                f"profile's name), got {_show(text)}",
            )
        else:
            kodi.append(rule)
    mpv: list[str] = []
    for item_path, text in c.string_list(t, (*path, "mpv")):
        expanded, missing = _expand(text.strip(), env)
        if missing:
            c.add(item_path, ", ".join(f"${m}" for m in missing) + " not set in the environment")
        elif not os.path.isabs(expanded):
            c.add(
                item_path,
                f"must be an absolute path or glob (after ~ and $VARS), got {_show(text)}",
            )
        else:
            mpv.append(expanded)
    mpris: list[str] = []
    for item_path, text in c.string_list(t, (*path, "mpris")):
        pattern = text.strip().removeprefix(_MPRIS_PREFIX)
        if not _BUS_PATTERN.fullmatch(pattern):
            c.add(
                item_path,
                "a D-Bus name pattern may only hold letters, digits, _ - . and the glob "
                f"characters * ? [ ] !, got {_show(text)}",
            )
        else:
            mpris.append(pattern)
    if len(c.problems) != before:
        return None
    return AccountConfig(
        name=name,
        default=default,
        plex=names["plex"],
        jellyfin=names["jellyfin"],
        kodi=tuple(dict.fromkeys(kodi)),
        mpv=tuple(dict.fromkeys(mpv)),
        mpris=tuple(dict.fromkeys(mpris)),
    )


_HOST = re.compile(r"[a-z0-9._-]+|\[[0-9a-f:.]+\]")


def _kodi_rule(text: str) -> str | None:
    """A Kodi rule as the router takes it, else None: "host" or "host:port" (an IPv6 address
    in brackets, port 1 to 65535), lower-cased, then maybe "/PROFILE" as written (the router
    compares it without case). A profile name may hold anything but control characters."""
    where, slash, profile = text.partition("/")
    where = where.strip().lower()
    profile = profile.strip()
    if slash and (not profile or not profile.isprintable()):
        return None
    if not _HOST.fullmatch(where):
        host, sep, port = where.rpartition(":")
        if not (
            sep
            and _HOST.fullmatch(host)
            and port.isascii()
            and port.isdigit()
            and len(port) <= 5
            and 1 <= int(port) <= 65535
        ):
            return None
    return f"{where}/{profile}" if slash else where


def _expand_home(value: str, env: Mapping[str, str]) -> str:
    """A leading `~` or `~user`; `$HOME` comes from `env`."""
    if value == "~" or value.startswith("~/"):
        return str(home_dir(env)) + value[1:]
    return os.path.expanduser(value)


def _positive_id(t: Mapping[str, object], path: _Key, c: _Checker) -> int | None:
    value = c.typed(t, path, int)
    if value is not None and value < 1:
        c.add(path, f"must be a positive integer, got {value}")
        return None
    return value


# ---------------------------------------------------------------------------- line finding

_BARE = r"[A-Za-z0-9_-]+"
_BASIC = r'"(?:[^"\\\n]|\\.)*"'
_LITERAL = r"'[^'\n]*'"
_PART = rf"(?:{_BARE}|{_BASIC}|{_LITERAL})"
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
_ARRAY_HEADER = re.compile(rf"\s*\[\[\s*({_DOTTED})\s*\]\]")
_TABLE_HEADER = re.compile(rf"\s*\[\s*({_DOTTED})\s*\]")
_KEY_LINE = re.compile(rf"\s*({_DOTTED})\s*=")
_PART_RE = re.compile(_PART)


def _split_key(dotted: str) -> tuple[str, ...]:
    parts: list[str] = []
    for match in _PART_RE.finditer(dotted):
        part = match.group(0)
        if part[0] in "\"'":
            part = part[1:-1]
        parts.append(part)
    return tuple(parts)


def _locate_keys(text: str) -> dict[_Key, int]:
    """Best-effort map from key paths to the line defining them (tomllib keeps no positions).

    Understands table and array-of-tables headers, dotted and quoted keys, and skips the inside
    of multi-line strings; keys inside inline tables map to the line of the inline table.
    """
    lines: dict[_Key, int] = {}
    array_counts: dict[tuple[str, ...], int] = {}
    prefix: _Key = ()
    in_string: str | None = None

    def indexed(names: tuple[str, ...]) -> _Key:
        out: list[str | int] = []
        for end, name in enumerate(names, 1):
            out.append(name)
            if (count := array_counts.get(names[:end])) is not None:
                out.append(count - 1)
        return tuple(out)

    def register(path: _Key, line: int, start: int = 1) -> None:
        for end in range(start, len(path) + 1):
            lines.setdefault(path[:end], line)

    for number, line in enumerate(text.split("\n"), 1):
        if in_string is not None:
            if line.count(in_string) % 2 == 1:
                in_string = None
            continue
        if match := _ARRAY_HEADER.match(line):
            names = _split_key(match.group(1))
            array_counts[names] = array_counts.get(names, 0) + 1
            prefix = indexed(names)
            register(prefix, number)
        elif match := _TABLE_HEADER.match(line):
            prefix = indexed(_split_key(match.group(1)))
            register(prefix, number)
        elif match := _KEY_LINE.match(line):
            register((*prefix, *_split_key(match.group(1))), number, len(prefix) + 1)
            rest = line[match.end() :]
            for delimiter in ('"""', "'''"):
                if rest.count(delimiter) % 2 == 1:
                    in_string = delimiter
                    break
    return lines
