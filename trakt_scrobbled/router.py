"""Which Trakt account a play belongs to: the household's routing rules, pure.

A play is named by its player `source` (``mpv:/run/user/1000/mpv.sock``, ``kodi:host:port``,
``plex:<uuid>``, ``jellyfin:<device>``, ``emby:<device>``, ``mpris:<bus name>``) and, for media
servers, the user the player reported (for Kodi, its current profile). The first account (in
file order) with a matching rule takes it, else the `default` account, else nobody: such a play
is not scrobbled, and the reason is kept for `status`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from trakt_scrobbled.config import IMPLICIT_ACCOUNT, AccountConfig

__all__ = ["Route", "route"]


@dataclass(frozen=True, slots=True)
class Route:
    """Where a play goes: `account` (None: not scrobbled) and, when no rule matched, why."""

    account: str | None
    reason: str = ""


def route(
    accounts: Sequence[AccountConfig],
    source: str,
    user: str | None = None,
    user_id: str | None = None,
) -> Route:
    """The account for a play of `source` by `user` (its name) / `user_id`, as the player said."""
    if not accounts:
        return Route(IMPLICIT_ACCOUNT)
    kind, _, rest = source.partition(":")
    for account in accounts:
        if _matches(account, kind, rest, user, user_id):
            return Route(account.name)
    for account in accounts:
        if account.default:
            return Route(account.name, "no rule matched: the default account")
    return Route(None, _why(kind, rest, user))


def _matches(
    account: AccountConfig, kind: str, rest: str, user: str | None, user_id: str | None
) -> bool:
    if kind == "plex":
        return _named(account.plex, user, user_id)
    if kind in ("jellyfin", "emby"):
        return _named(account.jellyfin, user, user_id)
    if kind == "kodi":
        host, _, port = rest.rpartition(":")
        host = host.lower()
        if ":" in host:  # an IPv6 address: rules write it in brackets
            host = f"[{host}]"
        profile = user.casefold() if user else None
        return any(_kodi(rule, (host, f"{host}:{port}"), profile) for rule in account.kodi)
    if kind == "mpv":
        return any(fnmatchcase(rest, pattern) for pattern in account.mpv)
    if kind == "mpris":
        return any(fnmatchcase(rest, pattern) for pattern in account.mpris)
    return False


def _kodi(rule: str, where: tuple[str, str], profile: str | None) -> bool:
    """A Kodi rule, "host" or "host:port", with "/PROFILE" (without case) only for that profile:
    a play whose profile is unknown matches no rule that names one."""
    host, slash, wanted = rule.partition("/")
    if host not in where:
        return False
    return not slash or (profile is not None and wanted.casefold() == profile)


def _named(rules: Sequence[str], user: str | None, user_id: str | None) -> bool:
    """A user name compared without case (people type them), an id exactly."""
    folded = user.casefold() if user else None
    return any(
        (folded is not None and rule.casefold() == folded) or (user_id and rule == user_id)
        for rule in rules
    )


def _why(kind: str, rest: str, user: str | None) -> str:
    if kind in ("plex", "jellyfin", "emby"):
        who = f'user "{user}"' if user else "an unknown user"
        return f"no [accounts] rule routes {kind} {who} and no account is the default"
    what = {"kodi": "Kodi", "mpv": "mpv socket", "mpris": "MPRIS player"}.get(kind, kind)
    if kind == "kodi" and user:
        rest = f'{rest} (profile "{user}")'
    return f"no [accounts] rule routes {what} {rest} and no account is the default"
