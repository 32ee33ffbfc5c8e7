"""Fixtures shared by the whole suite."""

from __future__ import annotations

from tests.fake_trakt import fake_trakt

__all__ = ["fake_trakt"]
