"""Logging set-up: journald-native under systemd, timestamped in a terminal; -v is ours only.

Under systemd, stderr is a journal stream (`$JOURNAL_STREAM` names its device and inode): each
line then starts with its syslog priority, `<3>` for an error (sd-daemon(3)), so that
`journalctl -p err` finds errors, and carries no timestamp of its own (the journal has one).
Debug output is this project's: guessit, rebulk, tzlocal and httpx keep to warnings.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

OURS = "trakt_scrobbled"
_HANDLER = "trakt-scrobbled"

_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}

_QUIET = {"python_multipart": logging.ERROR}
"""Libraries quieter still: python-multipart warns about each malformed webhook body before
raising, and the listener logs those once."""


def is_journal(env: Mapping[str, str], stream: TextIO) -> bool:
    """Whether `stream` is the journal stream systemd gave us (not a pipe we were given later,
    e.g. `trakt-scrobbled status | less` run from a service's shell)."""
    value = env.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return False
    return st.st_dev == int(dev) and st.st_ino == int(ino)


def priority(levelno: int) -> int:
    """The syslog priority of a `logging` level (levels in between round to the nearer one)."""
    for level in sorted(_PRIORITY, reverse=True):
        if levelno >= level:
            return _PRIORITY[level]
    return 7


class JournalFormatter(logging.Formatter):
    """`<N>name: message`, every line of a multi-line record with the same priority."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def setup(env: Mapping[str, str], *, verbose: bool, stream: TextIO | None = None) -> None:
    """One handler on the root logger; our loggers at INFO (DEBUG with -v), others at WARNING."""
    out = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(out)
    if is_journal(env, out):
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.set_name(_HANDLER)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for name, level in _QUIET.items():
        logging.getLogger(name).setLevel(level)
    set_level(logging.DEBUG if verbose else logging.INFO)


def set_level(level: int) -> None:
    """This project's level (the config's [logging] level, or -v); libraries stay at WARNING."""
    logging.getLogger(OURS).setLevel(level)


Log = logging.Logger | logging.LoggerAdapter[logging.Logger]


class _ForAccount(logging.LoggerAdapter[logging.Logger]):
    def process(self, msg: object, kwargs: Any) -> tuple[object, Any]:
        return f"account {self.extra['account'] if self.extra else '?'}: {msg}", kwargs


def for_account(logger: logging.Logger, account: str) -> Log:
    """`logger`, its lines naming the household account (none for the single account): two
    accounts' senders and logins log side by side."""
    return _ForAccount(logger, {"account": account}) if account else logger
