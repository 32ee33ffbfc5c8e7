"""`trakt-scrobbled service install`: the systemd user unit, written for this installation."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path

from trakt_scrobbled.paths import home_dir

UNIT_NAME = "trakt-scrobbled.service"


def unit_template() -> str:
    return files("trakt_scrobbled").joinpath("data", UNIT_NAME).read_text(encoding="utf-8")


def this_executable() -> str:
    """How systemd should start the daemon: this installation's script if there is one."""
    beside = Path(sys.prefix) / "bin" / "trakt-scrobbled"
    if beside.is_file() and os.access(beside, os.X_OK):
        return _quote(str(beside))
    script = shutil.which("trakt-scrobbled")
    if script:
        return _quote(script)
    return f"{_quote(sys.executable)} -m trakt_scrobbled"


def _quote(path: str) -> str:
    return shlex.quote(path) if any(c.isspace() for c in path) else path


def render_unit(executable: str) -> str:
    return unit_template().replace("@EXEC@", executable)


def user_unit_dir(env: Mapping[str, str]) -> Path:
    config_home = env.get("XDG_CONFIG_HOME", "")
    base = Path(config_home) if config_home.startswith("/") else home_dir(env) / ".config"
    return base / "systemd" / "user"


def install_unit(env: Mapping[str, str], executable: str | None = None) -> Path:
    """Write the unit (atomically, replacing an older one) and return where it went."""
    folder = user_unit_dir(env)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / UNIT_NAME
    tmp = target.with_suffix(".tmp")
    tmp.write_text(render_unit(executable or this_executable()), encoding="utf-8")
    tmp.replace(target)
    return target
