"""The systemd contract: a real NOTIFY_SOCKET, live config reload, the unit file."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_trakt import FakeTrakt
from tests.test_daemon import Daemon, login
from trakt_scrobbled.service import install_unit, render_unit

REPO = Path(__file__).resolve().parent.parent


class NotifySocket:
    """An AF_UNIX datagram socket like systemd's: collects what the daemon sends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.2)
        self.messages: list[str] = []
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop:
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._cond:
                self.messages.append(data.decode("utf-8"))
                self._cond.notify_all()

    def wait(self, prefix: str, after: int = 0, timeout: float = 10.0) -> int:
        """Index of the first message from `after` on that starts with `prefix`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, m in enumerate(self.messages[after:], after):
                    if m.startswith(prefix):
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no {prefix!r} after #{after} in {self.messages}")
                self._cond.wait(left)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self._sock.close()


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


@pytest.fixture
def daemon(tmp_path: Path, fake_trakt: FakeTrakt, notify: NotifySocket) -> Iterator[Daemon]:
    d = Daemon(tmp_path, fake_trakt.url)
    d.env["NOTIFY_SOCKET"] = str(notify.path)
    login(fake_trakt, d.state_dir)
    yield d
    d.kill()


def config_file(d: Daemon) -> Path:
    return d.root / "config" / "trakt-scrobbled" / "config.toml"


def test_notifications_arrive_in_order(daemon: Daemon, notify: NotifySocket) -> None:
    daemon.env["WATCHDOG_USEC"] = "1000000"  # ping every 0.5 s
    daemon.start()
    assert daemon.proc is not None
    daemon.env["WATCHDOG_PID"] = str(daemon.proc.pid)
    ready = notify.wait("READY=1")
    status = notify.wait("STATUS=", ready)
    assert "queue 0" in notify.messages[status]
    first_ping = notify.wait("WATCHDOG=1", ready)
    notify.wait("WATCHDOG=1", first_ping + 1)  # keeps pinging from the loop
    daemon.proc.send_signal(signal.SIGHUP)
    reloading = notify.wait("RELOADING=1", ready + 1)
    assert "MONOTONIC_USEC=" in notify.messages[reloading]
    notify.wait("READY=1", reloading)
    assert daemon.signal(signal.SIGTERM) == 0
    stopping = notify.wait("STOPPING=1", reloading)
    assert all(not m.startswith("READY") for m in notify.messages[stopping:])
    assert notify.messages[:ready] == [], "nothing before READY=1"


def test_edit_in_place_is_applied_live(daemon: Daemon) -> None:
    daemon.start()
    daemon.wait_log("ready")
    cfg = config_file(daemon)
    with cfg.open("a") as f:
        f.write("\n[scrobble]\nwatched_threshold = 90\n")
    daemon.wait_log("config reloaded: scrobble changed")
    assert daemon.proc is not None and daemon.proc.poll() is None


def test_save_by_rename_is_applied_live(daemon: Daemon) -> None:
    daemon.start()
    daemon.wait_log("ready")
    cfg = config_file(daemon)
    tmp = cfg.with_name(".config.toml.swp")
    tmp.write_text(cfg.read_text() + '\n[logging]\nlevel = "debug"\n')
    os.replace(tmp, cfg)
    daemon.wait_log("config reloaded: logging changed")


def test_sighup_reloads(daemon: Daemon) -> None:
    daemon.start()
    daemon.wait_log("ready")
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_log("config reloaded: nothing changed")


def test_invalid_edit_keeps_the_running_config(daemon: Daemon, notify: NotifySocket) -> None:
    daemon.start()
    daemon.wait_log("ready")
    cfg = config_file(daemon)
    good = cfg.read_text()
    cfg.write_text(good + "\n[scrobble]\nwatched_threshold = 50\nseek_debouce = 1\n")
    daemon.wait_log("config not reloaded")
    out = daemon.output()
    assert "scrobble.watched_threshold" in out
    assert "scrobble.seek_debouce" in out  # every problem, with its key path
    notify.wait("STATUS=", 0)
    assert any("config not applied" in m for m in notify.messages)
    assert daemon.proc is not None and daemon.proc.poll() is None
    cfg.write_text(good + "\n[scrobble]\nwatched_threshold = 95\n")
    daemon.wait_log("config reloaded: scrobble changed")


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze missing: apt-get install systemd")
        pytest.skip("systemd-analyze missing: apt-get install systemd")
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    unit = install_unit(env)
    assert unit == tmp_path / "config" / "systemd" / "user" / "trakt-scrobbled.service"
    text = unit.read_text()
    assert "Type=notify" in text and "WatchdogSec=" in text and "Restart=on-failure" in text
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
