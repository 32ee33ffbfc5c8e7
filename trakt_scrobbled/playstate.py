"""Snapshots of the plays in progress, so that a daemon killed (or a machine rebooted) after an
item crossed the watched threshold still records that watch on the next start, with its time.

Plays not identified yet (Trakt unreachable when they began) are kept too, with what the player
said about them, so that they can still be identified, and recorded, after a restart.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from dataclasses import dataclass, replace
from typing import Any

from trakt_scrobbled.events import Ids, MediaInfo, MediaType, TraktItem
from trakt_scrobbled.session import Identity, Phase, Reported, SessionState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Snapshot:
    source: str
    state: SessionState
    """The play as last seen; `state.position` is seconds at `saved_at`."""
    saved_at: float
    """Wall clock; for an `ended` play, when it ended."""
    media: MediaInfo | None = None
    """What the player said: to identify the play later, and to know it when it reappears."""
    ended: bool = False
    """The play is over and only waits for its identification."""
    user: str | None = None
    """Who played it, as the player named them (a Plex account): a restart routes the play
    to the same account of the household, not to the default one."""
    user_id: str | None = None

    @property
    def play_id(self) -> str:
        return self.state.play_id or ""

    def revive(self, now: float) -> SessionState:
        """The play as it was when last seen; `now` is this run's monotonic clock."""
        return replace(self.state, position_at=now)

    @property
    def key(self) -> str:
        """A source has one open play, but may have several ended ones awaiting identification."""
        return f"{self.source}#{self.play_id}" if self.ended else self.source


class PlayStore:
    """Snapshots are a safety net for a crash: one that cannot be written (the disk is full)
    is skipped with a warning, never an error that would stop the play being scrobbled."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._failing = False

    def _execute(self, sql: str, args: tuple[Any, ...]) -> None:
        try:
            self._conn.execute(sql, args)
        except sqlite3.Error as err:
            self._failed(err)
            return
        self._saved()

    def _failed(self, err: sqlite3.Error) -> None:
        if not self._failing:
            self._failing = True
            log.warning("play snapshots not saved (%s): a crash now could lose a play", err)

    def _saved(self) -> None:
        if self._failing:
            self._failing = False
            log.info("play snapshots saved again")

    def save(self, snap: Snapshot) -> None:
        state = snap.state
        data: dict[str, Any] = {
            "source": snap.source,
            "items": [i.to_json() for i in state.items],
            "phase": str(state.phase),
            "position": state.position,
            "duration": state.duration,
            "speed": state.speed,
            "reported": str(state.reported),
            "identity": str(state.identity),
            "part": state.part,
            "watched": sorted(state.watched),
            "seen": sorted(state.seen),
            "owed": state.owed,
            "media": None if snap.media is None else _media_json(snap.media),
            "ended": snap.ended,
            "user": snap.user,
            "user_id": snap.user_id,
        }
        self._execute(
            "INSERT INTO plays (source, play_id, data, saved_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(source) DO UPDATE SET play_id = excluded.play_id, "
            "data = excluded.data, saved_at = excluded.saved_at",
            (snap.key, snap.play_id, json.dumps(data), snap.saved_at),
        )

    def update(self, save: list[Snapshot], forget: list[str]) -> None:
        """Save and forget in one transaction: a kill never leaves a play in neither place."""
        if not save and not forget:
            return
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            self._failed(err)  # the disk is full or the database locked: a safety net skipped
            return
        try:
            for snap in save:
                self.save(snap)
            for key in forget:
                self.forget(key)
            self._conn.execute("COMMIT")
        except sqlite3.Error as err:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            self._failed(err)
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise

    def forget(self, key: str) -> None:
        """Forget the snapshot under `key` (a source, or `Snapshot.key` of an ended play)."""
        self._execute("DELETE FROM plays WHERE source = ?", (key,))

    def load(self) -> list[Snapshot]:
        """Every readable snapshot; an unreadable one cannot be finished and is dropped."""
        out, unreadable = [], []
        for key, play_id, raw, saved_at in self._conn.execute(
            "SELECT source, play_id, data, saved_at FROM plays ORDER BY saved_at"
        ).fetchall():
            try:
                out.append(_snapshot(key, play_id, json.loads(raw), float(saved_at)))
            except (ValueError, KeyError, TypeError, AttributeError):
                unreadable.append((key,))
        self._conn.executemany("DELETE FROM plays WHERE source = ?", unreadable)
        return out

    def clear(self) -> None:
        self._conn.execute("DELETE FROM plays")


def _snapshot(key: str, play_id: str, data: dict[str, Any], saved_at: float) -> Snapshot:
    if "items" in data:
        items = tuple(TraktItem.from_json(i) for i in data["items"])
    else:  # written by an earlier version: one item or none
        items = () if data["item"] is None else (TraktItem.from_json(data["item"]),)
    default_identity = Identity.IDENTIFIED if items else Identity.IDENTIFYING
    media = data.get("media")
    ended = bool(data.get("ended", False))
    duration = data["duration"]
    state = SessionState(
        play_id=play_id,
        items=items,
        phase=Phase(data["phase"]),
        position=float(data["position"]),
        position_at=0.0,
        duration=None if duration is None else float(duration),
        speed=float(data["speed"]),
        reported=Reported(data["reported"]),
        identity=Identity(data.get("identity", default_identity)),
        part=int(data.get("part", 0)),
        watched=frozenset(int(p) for p in data.get("watched", ())),
        seen=frozenset(int(p) for p in data.get("seen", ())),
        # An ended play of an earlier version was kept only because it owed its end.
        owed=bool(data.get("owed", ended)),
    )
    if not 0 <= state.part < max(1, len(items)):
        raise ValueError("part out of range")
    return Snapshot(
        source=data.get("source", key),
        state=state,
        saved_at=saved_at,
        media=None if media is None else _media_from_json(media),
        ended=ended,
        user=_text(data.get("user")),
        user_id=_text(data.get("user_id")),
    )


def _text(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def _media_json(media: MediaInfo) -> dict[str, Any]:
    return {
        "path": media.path,
        "title": media.title,
        "year": media.year,
        "media_type": str(media.media_type),
        "show_title": media.show_title,
        "season": media.season,
        "episode": media.episode,
        "episodes": list(media.episodes),
        "ids": media.ids.to_json(),
        "show_ids": media.show_ids.to_json(),
        "duration": media.duration,
    }


def _media_from_json(data: dict[str, Any]) -> MediaInfo:
    duration = data.get("duration")
    return MediaInfo(
        path=data.get("path"),
        title=data.get("title"),
        year=data.get("year"),
        media_type=MediaType(data.get("media_type", MediaType.UNKNOWN)),
        show_title=data.get("show_title"),
        season=data.get("season"),
        episode=data.get("episode"),
        episodes=tuple(int(n) for n in data.get("episodes", ())),
        ids=Ids.from_json(data.get("ids")),
        show_ids=Ids.from_json(data.get("show_ids")),
        duration=None if duration is None else float(duration),
    )
