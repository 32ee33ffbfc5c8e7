"""Where playback is between samples of the player's position.

The mpv and Kodi adapters ask for the position only at transitions and now and then while
playing; every event in between needs a position all the same. The last sample, run forward at
the playback speed while the item moves, is that position. Whether it moves is the adapter's
state (playing and not paused), so each call is told rather than this keeping a copy of it.
"""

from __future__ import annotations

from trakt_scrobbled.clock import Clock


def extrapolate(
    position: float,
    at: float,
    now: float,
    *,
    moving: bool,
    duration: float | None,
    speed: float = 1.0,
) -> float:
    """A position sampled at `at`, run forward to `now` at `speed` while `moving`, capped at
    `duration`: extrapolating past the end would report more than was played."""
    if moving:
        position += max(0.0, now - at) * speed
    if duration is not None:
        position = min(position, duration)
    return position


class Playhead:
    """The last sampled position of one item, its speed and duration, extrapolated on demand."""

    __slots__ = ("_anchor", "_clock", "_position", "duration", "speed")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._position: float | None = None
        self._anchor = 0.0
        self.speed = 1.0
        self.duration: float | None = None
        """Caps the estimate: extrapolating past the end would report more than was played."""

    def remember(self, position: float | None) -> None:
        """Anchor a sample at now; None (the player did not say) keeps the previous anchor."""
        if position is not None:
            self._position = max(0.0, position)
            self._anchor = self._clock.monotonic()

    def rebase(self, moving: bool) -> None:
        """Fold the extrapolation so far into the anchor, before pause or speed change."""
        self._position = self.estimate(moving)
        self._anchor = self._clock.monotonic()

    def estimate(self, moving: bool) -> float | None:
        """The last sample, extrapolated while `moving`, capped at the duration, never below 0."""
        if self._position is None:
            return None
        position = extrapolate(
            self._position,
            self._anchor,
            self._clock.monotonic(),
            moving=moving,
            duration=self.duration,
            speed=self.speed,
        )
        return max(0.0, position)

    def reset(self) -> None:
        """A new item: its position and duration are unknown; the speed is the player's own."""
        self._position = None
        self.duration = None
