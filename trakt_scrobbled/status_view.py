"""The status document: fetched from the running daemon's control socket, rendered for a terminal.

Rendering is a pure function of the document, the time and a time zone, so that it is tested by
tables. It tolerates missing or odd keys: the daemon answering may be another version.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from trakt_scrobbled.control import DEFAULT_WAIT, ControlError, ControlPath, request
from trakt_scrobbled.outbox import OutboxRow
from trakt_scrobbled.term import Paint

__all__ = [
    "EXIT_NOT_RUNNING",
    "START_HINT",
    "dumps",
    "duration",
    "fetch_status",
    "queue_row_json",
    "render_status",
]

EXIT_NOT_RUNNING = 3
"""What `status` exits with when no daemon answers (as `systemctl status` does)."""

START_HINT = (
    "start it with `systemctl --user start trakt-scrobbled` "
    "(install the unit first with `trakt-scrobbled service install`), "
    "or run `trakt-scrobbled run` in a terminal"
)

RECENT_SHOWN = 5
IGNORED_SHOWN = 5

_ID_ORDER = ("trakt", "imdb", "tmdb", "tvdb", "slug")


def fetch_status(where: ControlPath, *, wait: float = DEFAULT_WAIT) -> dict[str, Any]:
    """The daemon's status document, over its control socket; raises `control.NotRunning` or
    `control.ControlError`."""
    data = request(where, "status", wait=wait)
    if not isinstance(data, dict) or "version" not in data:
        raise ControlError("the daemon's status is not a status document (another version?)")
    return data


def queue_row_json(row: OutboxRow) -> dict[str, Any]:
    """One outbox row as `queue --json` prints it (and the daemon sends it)."""
    return {
        "id": row.id,
        "state": str(row.state),
        "kind": str(row.kind),
        "item": row.label,
        "watched": row.watched,
        "created_at": row.created_at,
        "attempts": row.attempts,
        "error": row.error,
        "body": row.body,
        "account": row.account,
    }


# --- rendering ------------------------------------------------------------------------------


def render_status(
    doc: Mapping[str, Any], *, now: float, tz: tzinfo | None = None, paint: Paint | None = None
) -> str:
    """The document as a few labelled blocks of text, ending with a newline.

    `now` is wall-clock seconds; `tz` is the zone times are shown in (None: the local one);
    `paint` colours labels and trouble (a terminal's; none by default).
    """
    view = _View(now, tz)
    blocks = [
        _header(doc, view),
        _auth(_obj(doc.get("auth")), view),
        _players(_list(doc.get("players"))),
        _playing(_list(doc.get("playing"))),
        _queue(_obj(doc.get("queue")), view),
        _sender(_obj(doc.get("sender"))),
        _accounts(_list(doc.get("accounts")), _obj(doc.get("accounts_removed"))),
        _recent(_list(doc.get("recent")), view),
        _ignored(_list(doc.get("ignored")), view),
        _problems(doc),
    ]
    paint = paint or Paint(False)
    return "".join(_colour(line, paint) + "\n" for block in blocks for line in block)


_LABEL = re.compile(r"^([A-Z][A-Za-z ]*:)(\s*)(.*)$")
_TROUBLE = re.compile(
    r"\b(login needed|not connected|[1-9]\d* failed|has problems|client id rejected"
    r"|parked|expired)\b"
)


def _colour(line: str, paint: Paint) -> str:
    """Labels in bold, trouble in red: the eye finds what needs doing."""
    if not paint.enabled:
        return line
    line = _TROUBLE.sub(lambda m: paint("fail", m.group(0)), line)
    label = _LABEL.match(line)
    if label is not None:
        line = paint("bold", label.group(1)) + label.group(2) + label.group(3)
    return line


@dataclass(frozen=True, slots=True)
class _View:
    now: float
    tz: tzinfo | None

    def when(self, stamp: object) -> str:
        """`HH:MM (5 min ago)`, with the date when it is not today."""
        at = _parse_time(stamp)
        if at is None:
            return str(stamp) if stamp else "?"
        local = datetime.fromtimestamp(at, self.tz)
        today = datetime.fromtimestamp(self.now, self.tz).date()
        clock = local.strftime("%H:%M" if local.date() == today else "%Y-%m-%d %H:%M")
        return f"{clock} ({_ago(self.now - at)})"

    def until(self, stamp: object) -> str:
        """`2025-06-08 12:00 (in 6 d)`, or `(2 h ago)` once past."""
        at = _parse_time(stamp)
        if at is None:
            return str(stamp) if stamp else "?"
        local = datetime.fromtimestamp(at, self.tz).strftime("%Y-%m-%d %H:%M")
        left = at - self.now
        return f"{local} ({'in ' + duration(left) if left >= 0 else _ago(-left)})"


def _header(doc: Mapping[str, Any], view: _View) -> list[str]:
    parts = [f"trakt-scrobbled {doc.get('version', '?')}"]
    if doc.get("pid") is not None:
        parts.append(f"pid {doc['pid']}")
    uptime = _number(doc.get("uptime"))
    if uptime is not None:
        parts.append(f"up {duration(uptime)}")
    return [" · ".join(parts)]


def _auth(auth: Mapping[str, Any], view: _View) -> list[str]:
    state = str(auth.get("state") or "unknown")
    if state == "per account":
        return ["Trakt:    one login per account (see Account: below)"]
    login = _obj(auth.get("login"))
    if state == "logged in":
        expires = auth.get("expires_at")
        if not expires:
            return ["Trakt:    logged in"]
        at = _parse_time(expires)
        word = "expired" if at is not None and at < view.now else "valid until"
        line = f"Trakt:    logged in, token {word} {view.until(expires)}"
        if word == "expired":
            line += "; it is refreshed at the next send, else run `trakt-scrobbled login`"
        return [line]
    if login:
        url, code = login.get("verification_url", "?"), login.get("user_code", "?")
        lines = [f"Trakt:    {state}: open {url} and enter the code {code}"]
        if login.get("url"):
            lines.append(f"          (or open {login['url']})")
        return lines
    if state == "login needed":
        return ["Trakt:    login needed: run `trakt-scrobbled login`"]
    return [f"Trakt:    {state}"]


def _players(players: Sequence[Any]) -> list[str]:
    if not players:
        return ["Players:  none watched (enable [mpv], [kodi] or [plex] in the config)"]
    lines = ["Players:"]
    for raw in players:
        player = _obj(raw)
        name = player.get("name", "?")
        connected = [_obj(c) for c in _list(player.get("connected"))]
        lines.append(
            f"  {name}: {len(connected)} connected" if connected else f"  {name}: not connected"
        )
        for conn in connected:
            detail = conn.get("detail")
            lines.append(f"    {conn.get('source', '?')}" + (f"  {detail}" if detail else ""))
        failing = _obj(player.get("failing"))
        if failing:
            crashes = failing.get("crashes")
            times = (
                f", {crashes} times in a row" if isinstance(crashes, int) and crashes > 1 else ""
            )
            lines.append(f"    failing: {failing.get('error', '?')}{times}; restarting it")
        ignored = _obj(player.get("ignored"))
        counts = [(str(k), n) for k, n in ignored.items() if isinstance(n, int) and n > 0]
        if counts:
            text = ", ".join(f"{reason} ×{n}" for reason, n in sorted(counts))
            lines.append(f"    ignored: {text}")
    return lines


def _playing(playing: Sequence[Any]) -> list[str]:
    if not playing:
        return ["Playing:  nothing"]
    lines = ["Playing:"]
    for raw in playing:
        play = _obj(raw)
        progress = _number(play.get("progress"))
        pct = f"{progress:.0f}%" if progress is not None else "?%"
        state = str(play.get("state") or "?")
        lines.append(f"  {state} {pct}  {play.get('label') or '?'}  ({play.get('source', '?')})")
        item = _obj(play.get("item"))
        if item:
            ids = _ids_text(item)
            label = item.get("label") or "?"
            lines.append(f"    Trakt: {label}" + (f" [{ids}]" if ids else ""))
        elif play.get("reason"):
            lines.append(f"    not scrobbled: {play['reason']}")
        else:
            lines.append("    not matched to Trakt yet")
    return lines


def _queue(queue: Mapping[str, Any], view: _View) -> list[str]:
    pending = _int(queue.get("pending"))
    failed = _int(queue.get("failed"))
    line = f"Queue:    {pending} pending, {failed} failed"
    if pending and queue.get("oldest_pending_at"):
        line += f"; oldest from {view.when(queue['oldest_pending_at'])}"
    lines = [line]
    if failed:
        lines.append(
            "          see `trakt-scrobbled queue`; `trakt-scrobbled queue retry --all` "
            "sends the failed ones again"
        )
    return lines


def _accounts(accounts: Sequence[Any], removed: Mapping[str, Any]) -> list[str]:
    """The household: one line per account (its login, queue, sender); none without."""
    lines: list[str] = []
    for account in accounts:
        if not isinstance(account, Mapping):
            continue
        queue = _obj(account.get("queue"))
        line = (
            f"Account:  {account.get('name')}: {_int(queue.get('pending'))} pending, "
            f"{_int(queue.get('failed'))} failed; {account.get('sender') or '?'}"
        )
        code = account.get("login_code")
        if not account.get("logged_in"):
            line += "; login needed"
            if isinstance(code, Mapping):
                line += f": enter {code.get('user_code')} at {code.get('url')}"
        elif account.get("last_error"):
            line += f"; last error: {account['last_error']}"
        lines.append(line)
    for name, rows in removed.items():
        lines.append(
            f"Account:  {name or '(single account)'}: not in the config; its {rows} row(s) "
            "are kept, not sent"
        )
    return lines


def _sender(sender: Mapping[str, Any]) -> list[str]:
    line = f"Sender:   {sender.get('state') or '?'}"
    if sender.get("last_error"):
        line += f"; last error: {sender['last_error']}"
    return [line]


def _recent(recent: Sequence[Any], view: _View) -> list[str]:
    if not recent:
        return ["Recent:   no scrobble yet"]
    lines = ["Recent:"]
    for raw in recent[:RECENT_SHOWN]:
        row = _obj(raw)
        whose = f"{row['account']}: " if row.get("account") else ""
        lines.append(
            f"  {view.when(row.get('at'))}  {whose}{row.get('kind', '?')} "
            f"{row.get('item') or '?'}: {row.get('result') or '?'}"
        )
    return lines


def _ignored(ignored: Sequence[Any], view: _View) -> list[str]:
    rows = [_obj(r) for r in ignored]
    if not rows:
        return []
    reasons = Counter(str(r.get("reason") or "?") for r in rows)
    summary = ", ".join(f"{reason} ×{n}" for reason, n in reasons.most_common())
    lines = [f"Not scrobbled: {summary}"]
    for row in rows[:IGNORED_SHOWN]:
        lines.append(
            f"  {view.when(row.get('at'))}  {row.get('label') or '?'} "
            f"({row.get('source', '?')}): {row.get('reason') or '?'}"
        )
    if len(rows) > IGNORED_SHOWN:
        lines.append(f"  … and {len(rows) - IGNORED_SHOWN} more")
    return lines


def _problems(doc: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    config = _obj(doc.get("config"))
    problems = [str(p) for p in _list(config.get("problems"))]
    if problems:
        where = config.get("file") or "the config file"
        lines.append(f"Config:   {where} has problems; the daemon goes on with the previous one:")
        lines += [f"  {p}" for p in problems]
    error = _obj(doc.get("server")).get("error")
    if error:
        lines.append(f"Listener: {error}")
    return lines


# --- helpers --------------------------------------------------------------------------------


def duration(seconds: float) -> str:
    """A short human duration: `45 s`, `12 min`, `2 h 03 min`, `3 d 4 h`."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def _ago(seconds: float) -> str:
    if seconds < 5:
        return "just now"
    return f"{duration(seconds)} ago"


def _parse_time(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _ids_text(item: Mapping[str, Any]) -> str:
    """The ids Trakt matched, most specific object first (the episode's, else the show's)."""
    for key in ("movie", "episode", "show"):
        ids = _obj(_obj(item.get(key)).get("ids"))
        if ids:
            keys = [k for k in _ID_ORDER if k in ids] + sorted(k for k in ids if k not in _ID_ORDER)
            return ", ".join(f"{k} {ids[k]}" for k in keys)
    return ""


def _obj(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> Sequence[Any]:
    return value if isinstance(value, list) else []


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def dumps(doc: Mapping[str, Any]) -> str:
    """`status --json`: the document as one line of JSON."""
    return json.dumps(doc, sort_keys=True)
