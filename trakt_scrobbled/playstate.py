"""Snapshots of the plays in progress, so that a daemon killed (or a machine rebooted) after an
item crossed the watched threshold still records that watch on the next start, with its time.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from trakt_scrobbled.events import TraktItem
from trakt_scrobbled.session import Phase, Reported, SessionState


@dataclass(frozen=True, slots=True)
class Snapshot:
    source: str
    play_id: str
    item: TraktItem
    phase: Phase
    position: float
    """Seconds at `saved_at`."""
    duration: float | None
    speed: float
    reported: Reported
    saved_at: float
    """Wall clock."""

    def revive(self, now: float) -> SessionState:
        """The session as it was when last seen; `now` is this run's monotonic clock."""
        return SessionState(
            play_id=self.play_id,
            item=self.item,
            phase=self.phase,
            position=self.position,
            position_at=now,
            duration=self.duration,
            speed=self.speed,
            reported=self.reported,
            seek_due=None,
        )


class PlayStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def save(self, snap: Snapshot) -> None:
        data: dict[str, Any] = {
            "item": snap.item.to_json(),
            "phase": str(snap.phase),
            "position": snap.position,
            "duration": snap.duration,
            "speed": snap.speed,
            "reported": str(snap.reported),
        }
        self._conn.execute(
            "INSERT INTO plays (source, play_id, data, saved_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(source) DO UPDATE SET play_id = excluded.play_id, "
            "data = excluded.data, saved_at = excluded.saved_at",
            (snap.source, snap.play_id, json.dumps(data), snap.saved_at),
        )

    def forget(self, source: str) -> None:
        self._conn.execute("DELETE FROM plays WHERE source = ?", (source,))

    def load(self) -> list[Snapshot]:
        out = []
        for source, play_id, raw, saved_at in self._conn.execute(
            "SELECT source, play_id, data, saved_at FROM plays ORDER BY saved_at"
        ).fetchall():
            try:
                data = json.loads(raw)
                out.append(
                    Snapshot(
                        source=source,
                        play_id=play_id,
                        item=TraktItem.from_json(data["item"]),
                        phase=Phase(data["phase"]),
                        position=float(data["position"]),
                        duration=None if data["duration"] is None else float(data["duration"]),
                        speed=float(data["speed"]),
                        reported=Reported(data["reported"]),
                        saved_at=float(saved_at),
                    )
                )
            except (ValueError, KeyError, TypeError):
                continue  # an unreadable snapshot cannot be finished; forget it below
        return out

    def clear(self) -> None:
        self._conn.execute("DELETE FROM plays")
