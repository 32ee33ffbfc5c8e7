"""Where the config file and the state (database, tokens) live.

Computed from the environment passed in, not read from `os.environ`, so that the XDG and systemd
rules are testable. XDG semantics: an unset, empty or relative `$XDG_*_HOME` is ignored and the
default under `$HOME` is used. systemd's `$CONFIGURATION_DIRECTORY` / `$STATE_DIRECTORY` (set by
`ConfigurationDirectory=` / `StateDirectory=`) win; they may list several paths separated by
colons, of which the first is ours.
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "trakt-scrobbled"
CONFIG_FILE_NAME = "config.toml"
DB_FILE_NAME = "state.db"
TOKEN_FILE_NAME = "token.json"  # noqa: S105 - a file name
PLEX_LOGIN_FILE_NAME = "plex.json"
STATE_DIR_MODE = 0o700


@dataclass(frozen=True, slots=True)
class Paths:
    """The files the daemon reads and writes; the state ones derive from `state_dir`."""

    config_file: Path
    state_dir: Path

    @property
    def db_file(self) -> Path:
        return self.state_dir / DB_FILE_NAME

    @property
    def token_file(self) -> Path:
        return self.state_dir / TOKEN_FILE_NAME

    def account_token_file(self, account: str) -> Path:
        """A household account's login (`token-NAME.json`); the implicit account's is
        `token.json`, as before accounts existed. `account` is a validated config name."""
        if not account:
            return self.token_file
        return self.state_dir / f"token-{account}.json"

    @property
    def plex_login_file(self) -> Path:
        """What `plex login` stored: the Plex server and its token (mode 0600)."""
        return self.state_dir / PLEX_LOGIN_FILE_NAME


def home_dir(env: Mapping[str, str]) -> Path:
    """`$HOME`, else the password database: a service may run without HOME set."""
    home = env.get("HOME", "")
    if home:
        return Path(home)
    return Path(pwd.getpwuid(os.getuid()).pw_dir)


def _first_dir(value: str | None) -> Path | None:
    """The first entry of a colon-separated systemd directory list, if any."""
    if not value:
        return None
    for entry in value.split(":"):
        if entry:
            return Path(entry)
    return None


def _xdg_home(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> Path:
    value = env.get(name, "")
    if value and os.path.isabs(value):
        return Path(value)
    return home_dir(env).joinpath(*default)


def resolve_paths(env: Mapping[str, str], config_override: Path | None = None) -> Paths:
    """The paths for this environment; `config_override` is the user's `--config PATH`."""
    if config_override is not None:
        config_file = config_override
    elif (conf_dir := _first_dir(env.get("CONFIGURATION_DIRECTORY"))) is not None:
        config_file = conf_dir / CONFIG_FILE_NAME
    else:
        config_file = _xdg_home(env, "XDG_CONFIG_HOME", (".config",)) / APP_NAME / CONFIG_FILE_NAME

    state_dir = _first_dir(env.get("STATE_DIRECTORY"))
    if state_dir is None:
        state_dir = _xdg_home(env, "XDG_STATE_HOME", (".local", "state")) / APP_NAME
    return Paths(config_file=config_file, state_dir=state_dir)


def ensure_state_dir(paths: Paths) -> Path:
    """Create the state directory private to the user (it holds tokens), tightening an existing one.

    The mode is set explicitly because `mkdir(mode=...)` is filtered by the umask. Raises
    `OSError` when the directory cannot be created or its mode cannot be set.
    """
    state_dir = paths.state_dir
    state_dir.mkdir(mode=STATE_DIR_MODE, parents=True, exist_ok=True)
    if stat.S_IMODE(state_dir.stat().st_mode) != STATE_DIR_MODE:
        state_dir.chmod(STATE_DIR_MODE)
    return state_dir
