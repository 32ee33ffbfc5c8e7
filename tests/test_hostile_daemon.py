"""Attacks on the whole daemon (issue 16): the real `trakt-scrobbled run` in a private home, the
fake Trakt on loopback, Plex webhooks over real HTTP, a real NOTIFY_SOCKET, a real tmpfs."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.daemon import Daemon, Home, NotifySocket, log_in, run_cli
from tests.fake_trakt import FakeTrakt
from tests.plex_payloads import jpeg, movie, multipart, webhook
from tests.smallfs import fill, mount_small_fs, unmount

SECRET = "k3rv9b2nq8x1m4z7w5y6"
PLEX_TOKEN = "PlexTok3nNeverPrinted"
DURATION_MS = 200_000
PLEX = f'[mpv]\nenabled = false\n\n[plex]\nenabled = true\nsecret = "{SECRET}"\n'


@pytest.fixture
def fake() -> Iterator[FakeTrakt]:
    with FakeTrakt() as fake:
        fake.add_movie("The Matrix", 1999, trakt=481, imdb="tt0133093", tmdb=603)
        yield fake


def post(home: Home, payload: dict[str, object]) -> int:
    body, content_type = multipart(payload, thumb=jpeg(20_000))
    url = f"http://127.0.0.1:{home.server_port}/plex/{SECRET}"
    return httpx.post(url, content=body, headers={"Content-Type": content_type}).status_code


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- 11. SIGHUP right after start ----------------------------------------------------------------


def catches_sighup(pid: int) -> bool:
    """Whether the process has a handler for SIGHUP now (the kernel's own view of it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    (mask,) = [line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")]
    return bool(int(mask, 16) & (1 << (signal.SIGHUP - 1)))


@pytest.mark.parametrize("delay", [0.15, 0.4])
def test_a_sighup_just_after_start_is_a_reload_not_a_death(
    tmp_path: Path, fake: FakeTrakt, delay: float
) -> None:
    home = Home.create(tmp_path, fake.url)
    log_in(fake, home)
    with Daemon(home) as daemon:
        started = time.monotonic()
        # Before its first line of Python runs, no process can catch a signal; ours does from
        # then on, long before it even says it is starting (a loaded machine only delays both).
        daemon.wait_until(lambda: catches_sighup(daemon.pid), timeout=10)
        assert "starting" not in daemon.stderr()
        time.sleep(max(0.0, delay - (time.monotonic() - started)))  # the attack's timing
        daemon.signal(signal.SIGHUP)
        daemon.wait_for_log("ready", timeout=20)
        daemon.wait_for_log("config reloaded", timeout=10)
        assert daemon.running
        assert daemon.terminate() == 0


# --- 2. the config file vanishing ----------------------------------------------------------------


@pytest.mark.parametrize("how", ["file deleted", "file emptied", "folder deleted"])
def test_a_vanished_config_keeps_the_running_one_and_its_return_is_applied(
    tmp_path: Path, fake: FakeTrakt, how: str
) -> None:
    home = Home.create(tmp_path, fake.url, players=PLEX)
    log_in(fake, home)
    with Daemon(home) as daemon:
        daemon.wait_for_log("ready", timeout=20)
        text = home.config_file.read_text()
        mark = daemon.mark()
        if how == "file deleted":
            home.config_file.unlink()
        elif how == "file emptied":
            home.config_file.write_text("")
        else:
            shutil.rmtree(home.config_file.parent)
        daemon.wait_for_log("the running config stays", since=mark)
        assert listening(home.server_port)  # not moved to the default port
        assert post(home, webhook("media.play", movie(view_offset=0))) == 200  # Plex still on
        assert "changed" not in daemon.stderr()[mark:]
        # Once more: said once, not on every event.
        if how == "file emptied":
            home.config_file.write_text("\n")
            time.sleep(1.0)  # a second burst of events, debounced (0.3 s) and handled
            assert daemon.stderr()[mark:].count("the running config stays") == 1
        # Back (a folder made again is seen too), with an edit: applied.
        mark = daemon.mark()
        home.config_file.parent.mkdir(parents=True, exist_ok=True)
        home.config_file.write_text(text + "\n[scrobble]\nwatched_threshold = 90\n")
        daemon.wait_for_log("config reloaded: scrobble.watched_threshold", since=mark)
        assert listening(home.server_port)
        assert daemon.terminate() == 0


# --- 6. a port in use ----------------------------------------------------------------------------


def test_a_port_in_use_is_retried_at_start_and_after_a_live_edit(
    tmp_path: Path, fake: FakeTrakt
) -> None:
    home = Home.create(tmp_path, fake.url, players=PLEX)
    log_in(fake, home)
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", home.server_port))
    squatter.listen()
    with Daemon(home) as daemon:
        daemon.wait_for_log("ready", timeout=20)
        daemon.wait_for_log(r"cannot listen on .*retrying")
        status = json.loads(run_cli(home, "status", "--json").stdout or "{}")
        if status:  # `status` may not reach a daemon without its listener (older transport)
            assert "retrying" in (status["server"]["error"] or "")
        mark = daemon.mark()
        squatter.close()
        daemon.wait_for_log("listening at last", since=mark, timeout=15)
        assert post(home, webhook("media.play", movie(view_offset=0))) == 200

        # A live edit to another port that is taken: the listener comes when it frees.
        other = socket.socket()
        other.bind(("127.0.0.1", 0))
        other.listen()
        new_port = other.getsockname()[1]
        mark = daemon.mark()
        text = home.config_file.read_text().replace(
            f"port = {home.server_port}", f"port = {new_port}"
        )
        home.config_file.write_text(text)
        daemon.wait_for_log(r"cannot listen on .*retrying", since=mark)
        other.close()
        daemon.wait_for_log("listening at last", since=mark, timeout=15)
        assert listening(new_port)
        assert daemon.terminate() == 0


# --- 5. secrets in URLs --------------------------------------------------------------------------


def test_a_token_in_a_url_is_never_printed(tmp_path: Path, fake: FakeTrakt) -> None:
    home = Home.create(tmp_path, fake.url, players=PLEX)
    log_in(fake, home)
    with NotifySocket() as notify, Daemon(home, env=notify.env) as daemon:
        daemon.wait_for_log("ready", timeout=20)
        mark = daemon.mark()
        bad = home.config_file.read_text().replace(
            "[plex]\n",
            f'[plex]\nurl = "http://plex:{PLEX_TOKEN}@10.0.0.2:32400/?X-Plex-Token={PLEX_TOKEN}"\n',
        )
        home.config_file.write_text(bad)
        daemon.wait_for_log("config not reloaded", since=mark)
        notify.wait_for(r"^STATUS=.*config not applied")
        checked = run_cli(home, "config", "check")
        status = run_cli(home, "status")
        assert checked.returncode != 0 and "X-Plex-Token=***" in checked.stdout + checked.stderr
        printed = [daemon.stderr(), *notify.messages, checked.stdout, checked.stderr]
        printed += [status.stdout, status.stderr]
        assert not [text for text in printed if PLEX_TOKEN in text]
        assert daemon.terminate() == 0


# --- 8. a lone surrogate, end to end -------------------------------------------------------------


def test_a_lone_surrogate_in_a_title_is_scrobbled_and_shown(
    tmp_path: Path, fake: FakeTrakt
) -> None:
    home = Home.create(tmp_path, fake.url, players=PLEX)
    log_in(fake, home)
    with Daemon(home) as daemon:
        daemon.wait_for_log("ready", timeout=20)
        meta = movie(title="The Matrix Caf\ud800", duration=DURATION_MS)
        assert post(home, webhook("media.play", {**meta, "viewOffset": 0})) == 200
        fake.wait_for(lambda r: r.path == "/scrobble/start", timeout=15)
        status = run_cli(home, "status")
        assert status.returncode == 0, status.stderr
        assert "Traceback" not in status.stderr
        assert post(home, webhook("media.scrobble", meta)) == 200
        assert post(home, webhook("media.stop", meta)) == 200
        fake.wait_until(lambda: len(fake.history()) == 1, timeout=15)
        assert "Traceback" not in daemon.stderr()
        assert daemon.terminate() == 0


# --- 1. a full disk, end to end ------------------------------------------------------------------


@pytest.fixture
def small_state(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "state"
    mount_small_fs(where, "2m")
    yield where
    unmount(where)


def test_a_watch_made_while_the_disk_is_full_is_delivered_once_space_is_back(
    tmp_path: Path, fake: FakeTrakt, small_state: Path
) -> None:
    home = Home.create(tmp_path, fake.url, players=PLEX)
    assert home.state_home == small_state
    log_in(fake, home)
    with NotifySocket() as notify, Daemon(home, env=notify.env) as daemon:
        daemon.wait_for_log("ready", timeout=20)
        filler = fill(small_state)
        meta = movie(duration=DURATION_MS)
        codes = [post(home, webhook("media.play", {**meta, "viewOffset": 0}))]
        daemon.wait_for_log("cannot write the state database", timeout=15)
        codes += [post(home, webhook("media.scrobble", meta))]
        codes += [post(home, webhook("media.stop", meta))]
        assert codes == [200, 200, 200]  # and never a 5xx
        notify.wait_for(r"^STATUS=.*held in memory")
        time.sleep(2.0)  # retries fail meanwhile: the disk stays full for a while
        assert fake.history() == ()
        assert daemon.stderr().count("ERROR") == 1
        filler.unlink()
        fake.wait_until(lambda: len(fake.history()) == 1, timeout=20)
        daemon.wait_for_log("writable again")
        assert daemon.terminate() == 0
    assert len(fake.history()) == 1  # exactly once
    assert "never retrieved" not in daemon.stderr()
    assert "Traceback" not in daemon.stderr()


# --- 13. a row id too big for SQLite -------------------------------------------------------------


@pytest.mark.parametrize("action", ["drop", "retry"])
def test_a_huge_row_id_is_a_clear_error(tmp_path: Path, fake: FakeTrakt, action: str) -> None:
    home = Home.create(tmp_path, fake.url)
    done = run_cli(home, "queue", action, "99999999999999999999999")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "no such row" in done.stderr
