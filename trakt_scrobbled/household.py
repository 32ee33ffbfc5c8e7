"""The implicit account becoming a named one: a config that gains `[accounts]` keeps its login
and its queue.

Before `[accounts]`, the one account's login is `token.json` and its rows carry the account
''. When the config names a `default` account, that account adopts both: the token file is
renamed (never copied: Trakt's refresh tokens are single-use, two holders would log each other
out) and the rows are relabelled in one transaction. An account that already has its own
login keeps it, and the implicit login then stays where it is, untouched.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass

from trakt_scrobbled.config import IMPLICIT_ACCOUNT
from trakt_scrobbled.paths import Paths

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Adopted:
    """What the default account took over from the implicit one."""

    token: bool
    rows: int


def adopt_implicit(conn: sqlite3.Connection, paths: Paths, default: str) -> Adopted:
    """Give the implicit account's login and queued rows to the `default` account."""
    if default == IMPLICIT_ACCOUNT:
        return Adopted(token=False, rows=0)
    old, new = paths.token_file, paths.account_token_file(default)
    token = False
    if old.exists() and not new.exists():
        # A rename in one folder is atomic: the login is in one place or the other, never lost.
        os.replace(old, new)
        token = True
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = conn.execute(
            "UPDATE outbox SET account = ? WHERE account = ?", (default, IMPLICIT_ACCOUNT)
        ).rowcount
        for table in ("watched", "recent"):
            conn.execute(
                f"UPDATE {table} SET account = ? WHERE account = ?",  # noqa: S608 - our names
                (default, IMPLICIT_ACCOUNT),
            )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    if token or rows:
        log.info(
            "account %s takes over the login%s and %d queued scrobble(s) of the single account",
            default,
            "" if token else " (it has its own, kept)",
            rows,
        )
    return Adopted(token=token, rows=rows)
