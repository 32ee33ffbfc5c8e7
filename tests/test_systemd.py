"""The systemd contract: a real NOTIFY_SOCKET, live config reload, the unit file."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import Daemon, Home, NotifySocket, log_in
from tests.fake_trakt import FakeTrakt
from trakt_scrobbled.service import install_unit, render_unit

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path: Path, fake_trakt: FakeTrakt) -> Home:
    home = Home.create(tmp_path, fake_trakt.url)
    log_in(fake_trakt, home)
    return home


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    with NotifySocket() as sock:
        yield sock


@pytest.fixture
def daemon(home: Home, notify: NotifySocket) -> Iterator[Daemon]:
    with Daemon(home, env=notify.env) as d:
        d.wait_for_log("ready")
        yield d


def test_notifications_arrive_in_order(home: Home, notify: NotifySocket) -> None:
    with Daemon(home, env={**notify.env, "WATCHDOG_USEC": "1000000"}) as daemon:
        notify.wait_for("^READY=1$")
        ready = len(notify.messages) - 1
        assert notify.messages[:ready] == [], "nothing before READY=1"
        status = notify.wait_for("^STATUS=", since=ready)
        assert "queue 0" in status.string
        notify.wait_for("^WATCHDOG=1$", since=ready)
        pinged = len(notify.messages)
        notify.wait_for("^WATCHDOG=1$", since=pinged)  # it keeps pinging from the loop
        daemon.signal(signal.SIGHUP)
        reloading = notify.wait_for("^RELOADING=1", since=pinged)
        assert "MONOTONIC_USEC=" in reloading.string
        after = len(notify.messages)
        notify.wait_for("^READY=1$", since=after)
        assert daemon.terminate() == 0
        notify.wait_for("^STOPPING=1$", since=after)


def test_edit_in_place_is_applied_live(daemon: Daemon, home: Home) -> None:
    mark = daemon.mark()
    with home.config_file.open("a") as f:
        f.write("\n[scrobble]\nwatched_threshold = 90\n")
    daemon.wait_for_log("config reloaded: scrobble.watched_threshold: 80 → 90", since=mark)
    assert daemon.running


def test_save_by_rename_is_applied_live(daemon: Daemon, home: Home) -> None:
    mark = daemon.mark()
    tmp = home.config_file.with_name(".config.toml.swp")
    tmp.write_text(home.config_file.read_text() + '\n[logging]\nlevel = "debug"\n')
    os.replace(tmp, home.config_file)
    daemon.wait_for_log("config reloaded: logging.level: info → debug", since=mark)


def test_sighup_reloads(daemon: Daemon) -> None:
    mark = daemon.mark()
    daemon.signal(signal.SIGHUP)
    daemon.wait_for_log("config reloaded: nothing changed", since=mark)


def test_invalid_edit_keeps_the_running_config(
    daemon: Daemon, home: Home, notify: NotifySocket
) -> None:
    good = home.config_file.read_text()
    mark = daemon.mark()
    home.config_file.write_text(good + "\n[scrobble]\nwatched_threshold = 50\nseek_debouce = 1\n")
    daemon.wait_for_log("config not reloaded", since=mark)
    daemon.wait_for_log(r"scrobble\.watched_threshold", since=mark)
    daemon.wait_for_log(r"scrobble\.seek_debouce", since=mark)  # every problem, by key path
    notify.wait_for("^STATUS=.*config not applied")
    assert daemon.running
    mark = daemon.mark()
    home.config_file.write_text(good + "\n[scrobble]\nwatched_threshold = 95\n")
    daemon.wait_for_log("config reloaded: scrobble.watched_threshold: 80 → 95", since=mark)


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze missing: apt-get install systemd")
        pytest.skip("systemd-analyze missing: apt-get install systemd")
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    unit = install_unit(env)
    assert unit == tmp_path / "config" / "systemd" / "user" / "trakt-scrobbled.service"
    text = unit.read_text()
    assert "Type=notify" in text
    assert "WatchdogSec=" in text
    assert "Restart=on-failure" in text
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--user", str(unit)],
        capture_output=True,
        text=True,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_repo_unit_is_the_packaged_one() -> None:
    shipped = (REPO / "systemd" / "trakt-scrobbled.service").read_text()
    assert shipped == render_unit("%h/.local/bin/trakt-scrobbled")
