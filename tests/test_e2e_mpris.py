"""MPRIS end to end: real VLC on a private session bus, the daemon as a process, the fake Trakt;
and `doctor` listing what it sees on that bus.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import Daemon, Home, log_in, run_cli
from tests.fake_trakt import FakeTrakt, RecordedRequest
from tests.mprisbus import (
    SessionBus,
    VlcLauncher,
    bus_client,
    session_bus_fixture,
    vlc_launcher_fixture,
)
from tests.realplayers import MediaFiles, media_fixture

__all__ = ["media_fixture", "session_bus_fixture", "vlc_launcher_fixture"]

pytestmark = [pytest.mark.slow]


@pytest.fixture
def fake() -> Iterator[FakeTrakt]:
    with FakeTrakt() as fake:
        fake.add_movie("The Matrix", 1999, trakt=481, imdb="tt0133093")
        yield fake


@pytest.fixture
def home(tmp_path: Path, fake: FakeTrakt, session_bus: SessionBus) -> Home:
    del session_bus  # its address is in the environment the daemon inherits
    home = Home.create(
        tmp_path / "home",
        fake.url,
        players='[mpv]\nenabled = false\n\n[mpris]\nenabled = true\nignore = ["spotify"]\n',
    )
    log_in(fake, home)
    return home


async def test_vlc_play_pause_resume_and_killed_reach_trakt(
    home: Home,
    fake: FakeTrakt,
    session_bus: SessionBus,
    vlc_launcher: VlcLauncher,
    media: MediaFiles,
) -> None:
    files = vlc_launcher.media(media)
    with Daemon(home) as daemon:
        daemon.wait_for_log("mpris: watching the session bus")
        async with bus_client(session_bus) as client:
            vlc = vlc_launcher.start(files.movie)  # after the daemon
            name = await vlc.ready(client)
            start: RecordedRequest = await fake.wait_for_async(
                lambda r: r.path == "/scrobble/start", timeout=15
            )
            assert start.json["movie"]["ids"]["trakt"] == 481

            status = json.loads(run_cli(home, "status", "--json").stdout)
            (mpris,) = [p for p in status["players"] if p["name"] == "mpris"]
            assert [c["source"] for c in mpris["connected"]] == ["mpris:vlc"]
            assert status["playing"][0]["source"] == "mpris:vlc"

            await client.wait_status(name, "Playing")
            await client.set_position(name, 60.0)  # a seek: a start at 40 % (or coalesced)
            await client.player(name, "Pause")
            stop = await fake.wait_for_async(lambda r: r.path == "/scrobble/stop", timeout=15)
            assert stop.json["progress"] == pytest.approx(40.0, abs=2.0)

            starts = len(fake.requests("/scrobble/start"))
            await client.player(name, "Play")
            resumed = await fake.wait_for_async(
                lambda r: r.path == "/scrobble/start", count=starts + 1, timeout=15
            )
            assert resumed.json["progress"] == pytest.approx(40.0, abs=2.0)
            vlc.kill()
            gone = await fake.wait_for_async(
                lambda r: r.path == "/scrobble/stop", count=2, timeout=15
            )
            assert gone.json["progress"] == pytest.approx(40.0, abs=3.0)
        assert daemon.terminate() == 0


async def test_doctor_lists_the_players_and_whether_they_give_a_url(
    home: Home, session_bus: SessionBus, vlc_launcher: VlcLauncher, media: MediaFiles
) -> None:
    files = vlc_launcher.media(media)
    async with bus_client(session_bus) as client:
        vlc = vlc_launcher.start(files.movie)
        name = await vlc.ready(client)
        await client.wait_status(name, "Playing")
        out = run_cli(home, "doctor").stdout
        assert "[ok]   mpris: vlc (VLC media player): gives a usable URL (xesam:url)" in out
        await client.player(name, "Stop")
        await client.wait_status(name, "Stopped")
        out = run_cli(home, "doctor").stdout
        assert "[note] mpris: vlc (VLC media player): stopped" in out
        # Ignored players are named as such; the doctor still lists them.
        home.write_config(
            "http://127.0.0.1:9",
            players='[mpv]\nenabled = false\n\n[mpris]\nenabled = true\nignore = ["vlc"]\n',
        )
        out = run_cli(home, "doctor").stdout
        assert "mpris: vlc (VLC media player): not followed ([mpris] ignore)" in out


def test_doctor_without_a_session_bus(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS")
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    result = run_cli(home, "doctor", env={"XDG_RUNTIME_DIR": ""})  # the home sets one
    assert "[FAIL] mpris: no session bus" in result.stdout
    assert result.returncode != 0
