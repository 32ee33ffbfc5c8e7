"""Fixtures shared by the whole suite; session-scoped players live here so there is one each."""

from __future__ import annotations

from tests.fake_trakt import fake_trakt
from tests.kodi_fixture import (
    kodi_fixture,
    kodi_launcher_fixture,
    kodi_library_fixture,
    kodi_media_fixture,
    shared_kodi_fixture,
    xvfb_fixture,
)
from tests.realplayers import media_fixture, mpv_launcher_fixture, sock_dir_fixture

__all__ = [
    "fake_trakt",
    "kodi_fixture",
    "kodi_launcher_fixture",
    "kodi_library_fixture",
    "kodi_media_fixture",
    "media_fixture",
    "mpv_launcher_fixture",
    "shared_kodi_fixture",
    "sock_dir_fixture",
    "xvfb_fixture",
]
