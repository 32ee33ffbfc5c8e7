"""The playhead: the position between samples that every mpv and Kodi event carries."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.clocks import ManualClock
from trakt_scrobbled.players.playhead import Playhead


@dataclass(frozen=True, slots=True)
class Case:
    sample: float | None
    speed: float
    duration: float | None
    moving: bool
    elapsed: float
    expected: float | None


CASES = {
    "extrapolated at speed 1": Case(10.0, 1.0, None, True, 5.0, 15.0),
    "extrapolated at speed 2": Case(10.0, 2.0, None, True, 5.0, 20.0),
    "extrapolated at half speed": Case(10.0, 0.5, 100.0, True, 4.0, 12.0),
    "frozen while not moving": Case(10.0, 2.0, 100.0, False, 30.0, 10.0),
    "capped at the duration": Case(95.0, 1.0, 100.0, True, 30.0, 100.0),
    "a sample past the end is capped": Case(120.0, 1.0, 100.0, False, 0.0, 100.0),
    "a negative sample is 0": Case(-3.0, 1.0, None, False, 0.0, 0.0),
    "rewinding stops at 0": Case(10.0, -4.0, None, True, 5.0, 0.0),
    "None before any sample": Case(None, 1.0, 100.0, True, 5.0, None),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_estimate(case: Case) -> None:
    clock = ManualClock()
    playhead = Playhead(clock)
    playhead.speed = case.speed
    playhead.duration = case.duration
    playhead.remember(case.sample)
    clock.advance(case.elapsed)
    assert playhead.estimate(case.moving) == pytest.approx(case.expected)


def test_a_missing_sample_keeps_the_previous_anchor() -> None:
    clock = ManualClock()
    playhead = Playhead(clock)
    playhead.remember(10.0)
    clock.advance(5.0)
    playhead.remember(None)
    clock.advance(5.0)
    assert playhead.estimate(True) == pytest.approx(20.0)


def test_rebase_before_a_speed_change_keeps_the_time_played_at_the_old_speed() -> None:
    clock = ManualClock()
    playhead = Playhead(clock)
    playhead.remember(10.0)
    clock.advance(10.0)  # 10 s at speed 1: at 20
    playhead.rebase(moving=True)
    playhead.speed = 2.0
    clock.advance(5.0)  # 5 s at speed 2: at 30
    assert playhead.estimate(True) == pytest.approx(30.0)


def test_without_a_rebase_a_speed_change_rewrites_the_past() -> None:
    """Why adapters rebase first: the new speed would apply to time already played."""
    clock = ManualClock()
    playhead = Playhead(clock)
    playhead.remember(10.0)
    clock.advance(10.0)
    playhead.speed = 2.0
    clock.advance(5.0)
    assert playhead.estimate(True) == pytest.approx(40.0)


def test_rebase_while_paused_keeps_the_position_and_restarts_the_clock() -> None:
    clock = ManualClock()
    playhead = Playhead(clock)
    playhead.remember(10.0)
    clock.advance(60.0)  # paused for a minute
    playhead.rebase(moving=False)
    clock.advance(3.0)  # resumed 3 s ago
    assert playhead.estimate(True) == pytest.approx(13.0)


def test_rebase_before_any_sample_stays_unknown() -> None:
    clock = ManualClock()
    playhead = Playhead(clock)
    playhead.rebase(moving=True)
    clock.advance(5.0)
    assert playhead.estimate(True) is None


def test_reset_forgets_position_and_duration_but_keeps_the_speed() -> None:
    clock = ManualClock()
    playhead = Playhead(clock)
    playhead.speed = 1.5
    playhead.duration = 100.0
    playhead.remember(42.0)
    playhead.reset()
    assert playhead.estimate(False) is None
    assert playhead.duration is None
    assert playhead.speed == 1.5
    playhead.remember(500.0)  # the next item is longer: no cap from the old one
    assert playhead.estimate(False) == 500.0


@given(
    sample=st.floats(-100.0, 10_000.0),
    speed=st.floats(0.01, 100.0),
    duration=st.none() | st.floats(0.0, 10_000.0),
    steps=st.lists(st.floats(0.0, 1_000.0), min_size=1, max_size=20),
)
def test_estimate_stays_within_bounds_and_never_goes_back_while_moving(
    sample: float, speed: float, duration: float | None, steps: list[float]
) -> None:
    clock = ManualClock()
    playhead = Playhead(clock)
    playhead.speed = speed
    playhead.duration = duration
    playhead.remember(sample)
    previous = playhead.estimate(True)
    assert previous is not None
    for step in steps:
        clock.advance(step)
        current = playhead.estimate(True)
        assert current is not None
        assert 0.0 <= current <= (duration if duration is not None else float("inf"))
        assert current >= previous
        previous = current
