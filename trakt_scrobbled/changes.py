"""What a config reload changed, as `section.key: old → new`, secrets masked.

"scrobble changed" told nobody which of its keys, nor to what; a secret's value never reaches
the log, only that it changed (or was set, or cleared).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from trakt_scrobbled.config import SECTIONS, Config

SECRET_KEYS = frozenset({"client_secret", "secret", "token", "api_key", "password"})
_LONG = 60


def describe_changes(old: Config, new: Config) -> list[str]:
    """One line per changed key, in the file's order."""
    lines: list[str] = []
    for section in SECTIONS:
        before, after = getattr(old, section), getattr(new, section)
        if before == after:
            continue
        if not dataclasses.is_dataclass(before) or isinstance(before, type):
            lines.append(f"{section}: {_count(before)} → {_count(after)}")
            continue
        for f in dataclasses.fields(before):
            a, b = getattr(before, f.name), getattr(after, f.name)
            if a == b:
                continue
            key = f"{section}.{f.name}"
            if f.name in SECRET_KEYS:
                lines.append(f"{key}: {_secret_change(a, b)}")
            else:
                lines.append(f"{key}: {_show(a)} → {_show(b)}")
    return lines


def _secret_change(old: object, new: object) -> str:
    if not old:
        return "set (hidden)"
    if not new:
        return "cleared"
    return "changed (hidden)"


def _count(value: Any) -> str:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return f"{len(value)} entr{'y' if len(value) == 1 else 'ies'}"
    return _show(value)


def _show(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 80 in the file, 80.0 in the default: both are 80 to a person
    if isinstance(value, tuple):
        value = list(value)
    text = str(getattr(value, "value", value)) if not isinstance(value, list) else repr(value)
    if isinstance(value, str) and not hasattr(value, "value"):
        text = repr(value)
    return text if len(text) <= _LONG else text[: _LONG - 1] + "…"
