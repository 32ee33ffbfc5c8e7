"""The application identity a packager ships (`data/app.toml`), used when the user set none.

Order: `TRAKT_CLIENT_ID` / `TRAKT_CLIENT_SECRET`, then the config's [trakt] keys, then this. The
two keys go as a pair: a user's own client id is never combined with the bundled secret.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

log = logging.getLogger(__name__)

APP_FILE = "app.toml"


@dataclass(frozen=True, slots=True)
class AppIdentity:
    client_id: str
    client_secret: str = field(repr=False)


def read_identity(text: str) -> AppIdentity | None:
    """Both keys of [trakt], or None when either is empty or the file is not what we wrote."""
    try:
        trakt = tomllib.loads(text).get("trakt", {})
    except tomllib.TOMLDecodeError:
        log.warning("the bundled %s is not valid TOML: ignored", APP_FILE)
        return None
    if not isinstance(trakt, dict):
        return None
    client_id, secret = trakt.get("client_id"), trakt.get("client_secret")
    if not (isinstance(client_id, str) and isinstance(secret, str)):
        return None
    client_id, secret = client_id.strip(), secret.strip()
    return AppIdentity(client_id, secret) if client_id and secret else None


def bundled_identity(path: Path | None = None) -> AppIdentity | None:
    """The packager's identity (from `path`, else the package's `data/app.toml`), if any."""
    try:
        if path is not None:
            text = path.read_text(encoding="utf-8")
        else:
            text = (resources.files("trakt_scrobbled") / "data" / APP_FILE).read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return read_identity(text)
