"""The control socket: a private door per user, with real sockets and real daemons.

In-process tests drive `ControlServer` and `request` directly (the folder checks, SO_PEERCRED,
hostile requests); process tests run the real daemon and commands in private homes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import REPO_ROOT, Daemon, Home, enqueue, free_port, log_in, run_cli
from tests.fake_trakt import FakeTrakt
from trakt_scrobbled import control
from trakt_scrobbled.clock import SystemClock
from trakt_scrobbled.control import (
    CommandFailed,
    ControlError,
    ControlPath,
    ControlServer,
    NotRunning,
    control_path,
    request,
)
from trakt_scrobbled.events import Ids, MediaType, Scrobble, ScrobbleVerb, TraktItem
from trakt_scrobbled.outbox import Outbox
from trakt_scrobbled.paths import Paths
from trakt_scrobbled.store import open_db

pytestmark = [pytest.mark.timeout(90)]


class Commands:
    """A handler that answers `echo` and `boom`, and keeps what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, command: str, args: Mapping[str, Any]) -> Any:
        self.asked.append((command, dict(args)))
        if command == "echo":
            return dict(args)
        if command == "boom":
            raise RuntimeError("a bug")
        raise CommandFailed(f"unknown command {command!r}")


@pytest.fixture
def where(tmp_path: Path) -> ControlPath:
    return ControlPath(tmp_path / "run", ours=True)


# --- where the socket lives -------------------------------------------------------------------


def test_runtime_directory_wins_then_xdg_then_the_state_folder(tmp_path: Path) -> None:
    paths = Paths(config_file=tmp_path / "c.toml", state_dir=tmp_path / "state")
    env = {"XDG_RUNTIME_DIR": "/run/user/1000", "RUNTIME_DIRECTORY": "/run/user/1000/ts:/x"}
    assert control_path(env, paths) == ControlPath(Path("/run/user/1000/ts"), ours=False)
    assert control_path({"XDG_RUNTIME_DIR": "/run/user/1000"}, paths) == ControlPath(
        Path("/run/user/1000/trakt-scrobbled"), ours=True
    )
    for env in ({}, {"XDG_RUNTIME_DIR": "relative/path"}, {"XDG_RUNTIME_DIR": ""}):
        assert control_path(env, paths) == ControlPath(tmp_path / "state", ours=True)


# --- the door itself --------------------------------------------------------------------------


async def test_a_command_and_its_answer(where: ControlPath) -> None:
    server = ControlServer(where, Commands())
    await server.start()
    try:
        folder, sock = where.folder.stat(), where.socket.stat()
        assert stat.S_IMODE(folder.st_mode) == 0o700
        assert stat.S_IMODE(sock.st_mode) == 0o600 and stat.S_ISSOCK(sock.st_mode)
        answer = await _ask(where, "echo", {"id": 7})
        assert answer == {"id": 7}
        with pytest.raises(CommandFailed, match="unknown command 'nope'"):
            await _ask(where, "nope")
        with pytest.raises(CommandFailed, match="boom failed in the daemon; see its log"):
            await _ask(where, "boom")
    finally:
        await server.stop()
    assert not where.socket.exists()
    with pytest.raises(NotRunning):
        await _ask(where, "echo")


async def _ask(where: ControlPath, command: str, args: Mapping[str, Any] | None = None) -> Any:
    import asyncio

    return await asyncio.to_thread(request, where, command, args, wait=5.0)


async def test_hostile_requests_get_an_error_and_the_door_stays_open(where: ControlPath) -> None:
    import asyncio

    commands = Commands()
    server = ControlServer(where, commands)
    await server.start()

    def raw(data: bytes) -> bytes:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(where.socket))
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            return s.makefile("rb").read()

    try:
        for data, said in (
            (b"not json\n", "not JSON"),
            (b"[1, 2]\n", "names no command"),
            (b'{"command": 5}\n', "names no command"),
            (b"x" * (control.MAX_REQUEST + 10) + b"\n", "too long"),
            (b"", "not JSON"),
        ):
            answer = json.loads(await asyncio.to_thread(raw, data))
            assert answer["ok"] is False and said in answer["error"], (data[:20], answer)
        assert commands.asked == []
        assert await _ask(where, "echo", {"a": 1}) == {"a": 1}
    finally:
        await server.stop()


ROOT_ONLY = pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")


def _as_nobody(code: str) -> list[str]:
    return [sys.executable, "-c", f"import os, socket; os.setuid(65534); {code}"]


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder under /tmp that `nobody` may traverse (pytest's own are 0700)."""
    base = Path(tempfile.mkdtemp(prefix="tsc-"))
    base.chmod(0o711)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@ROOT_ONLY
async def test_a_client_of_another_user_is_refused(shared_tmp: Path) -> None:
    """`nobody` reaching our socket (its modes opened on purpose) is refused by the uid check."""
    import asyncio

    where = ControlPath(shared_tmp / "run", ours=True)
    commands = Commands()
    server = ControlServer(where, commands)
    await server.start()
    try:
        where.folder.chmod(0o711)
        where.socket.chmod(0o666)
        code = (
            f"s = socket.socket(socket.AF_UNIX); s.connect({str(where.socket)!r})\n"
            "try:\n"
            '    s.sendall(b\'{"command": "echo"}\\n\')\n'
            "except BrokenPipeError:\n"
            "    pass  # refused before the request was read\n"
            "print(s.makefile().readline())"
        )
        proc = await asyncio.create_subprocess_exec(
            *_as_nobody(code), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert "not this daemon's user" in out.decode(), err.decode()
        assert commands.asked == []
    finally:
        await server.stop()


@ROOT_ONLY
def test_a_socket_another_user_serves_is_refused(shared_tmp: Path) -> None:
    """Our client asks the peer's uid too: a socket in a folder we trust, served by `nobody`."""
    folder = shared_tmp / "run"
    folder.mkdir()
    folder.chmod(0o777)
    path = folder / "control.sock"
    code = (
        f"s = socket.socket(socket.AF_UNIX); s.bind({str(path)!r}); s.listen(); "
        "print('up', flush=True); c, _ = s.accept(); c.recv(100); "
        'c.sendall(b\'{"ok": true, "result": {"version": "evil"}}\\n\')'
    )
    server = subprocess.Popen(_as_nobody(code), stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "up"
        folder.chmod(0o700)
        with pytest.raises(ControlError, match="served by another user"):
            request(ControlPath(folder, ours=True), "status", wait=5.0)
    finally:
        server.kill()
        server.wait(10)


@pytest.mark.parametrize("mode", [0o755, 0o770, 0o701])
async def test_a_folder_others_may_enter_is_refused(where: ControlPath, mode: int) -> None:
    where.folder.mkdir(mode=0o700)
    where.folder.chmod(mode)
    with pytest.raises(ControlError, match="chmod 700"):
        await ControlServer(where, Commands()).start()
    with pytest.raises(ControlError, match="chmod 700"):
        request(where, "status")


async def test_a_link_or_a_file_in_place_of_the_folder_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    link = ControlPath(tmp_path / "link", ours=True)
    link.folder.symlink_to(elsewhere)
    with pytest.raises(ControlError, match="not a folder"):
        await ControlServer(link, Commands()).start()
    with pytest.raises(ControlError, match="not a folder"):
        request(link, "status")


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a folder to another user")
async def test_a_folder_of_another_user_is_refused(where: ControlPath) -> None:
    where.folder.mkdir(mode=0o700)
    os.chown(where.folder, 65534, 65534)
    with pytest.raises(ControlError, match="belongs to another user"):
        await ControlServer(where, Commands()).start()
    with pytest.raises(ControlError, match="belongs to another user"):
        request(where, "status")


async def test_a_stale_socket_is_replaced_and_a_live_one_is_not(where: ControlPath) -> None:
    first = ControlServer(where, Commands())
    await first.start()
    try:
        with pytest.raises(ControlError, match="another trakt-scrobbled answers"):
            await ControlServer(where, Commands()).start()
    finally:
        await first.stop()
    # a socket left by a killed daemon: nothing listens on it
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(where.socket))
    stale.close()
    second = ControlServer(where, Commands())
    await second.start()
    try:
        assert await _ask(where, "echo", {"x": 1}) == {"x": 1}
    finally:
        await second.stop()


async def test_a_deep_folder_still_works(tmp_path: Path) -> None:
    """sun_path holds 107 bytes; a deeper runtime folder goes through /proc/self/fd."""
    deep = tmp_path.joinpath(*(["d" * 40] * 4))
    deep.mkdir(parents=True)
    where = ControlPath(deep / "trakt-scrobbled", ours=True)
    assert len(str(where.socket)) > 107
    server = ControlServer(where, Commands())
    await server.start()
    try:
        assert await _ask(where, "echo", {"deep": True}) == {"deep": True}
    finally:
        await server.stop()


# --- the daemon's door, end to end -------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeTrakt]:
    with FakeTrakt() as fake:
        yield fake


def movie_start(play: str) -> Scrobble:
    item = TraktItem(MediaType.MOVIE, Ids(trakt=481), title="The Matrix", year=1999)
    return Scrobble(ScrobbleVerb.START, play, item, 10.0)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_two_users_daemons_answer_each_for_itself(tmp_path: Path, fake: FakeTrakt) -> None:
    """Two homes (two users' runtime and state folders) on one machine, with the same
    [server] port: each `status` reaches its own daemon, and no TCP port is opened (no
    webhook player is enabled)."""
    one = Home.create(tmp_path / "one", fake.url)
    two = Home(tmp_path / "two", server_port=one.server_port)
    two.write_config(fake.url)
    with Daemon(one) as d1, Daemon(two) as d2:
        d1.wait_for_log("ready")
        d2.wait_for_log("ready")
        for home, daemon in ((one, d1), (two, d2)):
            result = run_cli(home, "status", "--json")
            assert result.returncode == 0, result.stderr
            assert json.loads(result.stdout)["pid"] == daemon.pid
            assert stat.S_IMODE(home.control_socket.stat().st_mode) == 0o600
        assert not _listening(one.server_port), "no webhook player, no TCP listener"
        assert "address already in use" not in d1.stderr() + d2.stderr()
        assert d1.terminate() == 0 and d2.terminate() == 0
    assert not one.control_socket.exists() and not two.control_socket.exists()


def test_queue_retry_wakes_the_sender_at_once(tmp_path: Path, fake: FakeTrakt) -> None:
    home = Home.create(tmp_path, fake.url)
    log_in(fake, home)
    enqueue(home, movie_start("a"))
    conn = open_db(home.db_file)
    try:
        outbox = Outbox(conn, SystemClock())
        (row,) = outbox.rows()
        outbox.bury(row, "Trakt answered 423 (a test)")
    finally:
        conn.close()
    with Daemon(home) as daemon:
        daemon.wait_for_log("ready")
        listed = run_cli(home, "queue", "--json")
        assert listed.returncode == 0, listed.stderr
        (shown,) = [json.loads(line) for line in listed.stdout.splitlines()]
        assert shown["state"] == "dead" and shown["id"] == row.id
        assert fake.requests("/scrobble") == []
        retried = run_cli(home, "queue", "retry", str(row.id))
        assert retried.returncode == 0, retried.stderr
        assert "the daemon is sending them now" in retried.stdout
        started = time.monotonic()
        fake.wait_for(lambda r: r.path == "/scrobble/start", timeout=5.0)
        assert time.monotonic() - started < 5.0
        again = run_cli(home, "queue", "drop", "999")
        assert again.returncode == 1 and "no row 999" in again.stderr
        assert daemon.terminate() == 0


def test_status_and_queue_work_with_a_broken_config(tmp_path: Path, fake: FakeTrakt) -> None:
    home = Home.create(tmp_path, fake.url)
    with Daemon(home) as daemon:
        daemon.wait_for_log("ready")
        mark = daemon.mark()
        home.config_file.write_text(
            home.config_file.read_text() + "\n[scrobble]\nwatched_threshold = 20\n"
        )
        daemon.wait_for_log("config not reloaded", since=mark)
        as_json = run_cli(home, "status", "--json")
        assert as_json.returncode == 0, as_json.stderr
        doc = json.loads(as_json.stdout)
        assert doc["pid"] == daemon.pid
        assert any("watched_threshold" in p for p in doc["config"]["problems"])
        human = run_cli(home, "status")
        assert human.returncode == 0, human.stderr
        assert "has problems; the daemon goes on with the previous one" in human.stdout
        queue = run_cli(home, "queue")
        assert queue.returncode == 0 and "the queue is empty" in queue.stdout
        assert "the daemon runs on with its previous config" in queue.stderr
        reload = run_cli(home, "reload")
        assert reload.returncode == 1 and "watched_threshold" in reload.stderr
        assert daemon.terminate() == 0


def test_logout_while_running_is_taken_at_once_and_said_once(
    tmp_path: Path, fake: FakeTrakt
) -> None:
    home = Home.create(tmp_path, fake.url)
    log_in(fake, home)
    with Daemon(home) as daemon:
        daemon.wait_for_log("ready")
        mark = daemon.mark()
        out = run_cli(home, "logout")
        assert out.returncode == 0, out.stderr
        assert "The running daemon stopped using the login" in out.stdout
        line = daemon.wait_for_log(
            r"logged out; to log in again: open \S+ and enter the code", since=mark
        )
        status = json.loads(run_cli(home, "status", "--json").stdout)
        assert status["auth"]["state"] == "login needed"
        code = status["auth"]["login"]["user_code"]
        assert code in line.group(0) or code in daemon.stderr()[mark:]
        said = daemon.stderr()[mark:]
        assert "run `trakt-scrobbled login`" not in said
        assert len(re.findall(r"login needed|logged out", said)) == 1, said
        assert daemon.terminate() == 0


def test_every_file_the_daemon_makes_is_private(tmp_path: Path, fake: FakeTrakt) -> None:
    """Under a permissive umask (no systemd), too: the daemon sets its own."""
    home = Home.create(tmp_path, fake.url)
    log_in(fake, home)
    home.token_file.chmod(0o600)
    argv = [
        sys.executable,
        "-c",
        "import os, sys; os.umask(0o022); from trakt_scrobbled.cli import main; "
        "sys.exit(main(['run']))",
    ]
    proc = subprocess.Popen(
        argv,
        env=home.env(),
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not home.control_socket.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the daemon did not start"
            time.sleep(0.05)
        # `queue` in another process, under the same permissive umask, opens the database too
        queue = subprocess.run(
            [sys.executable, "-c", argv[2].replace("['run']", "['queue']")],
            env=home.env(),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert queue.returncode == 0, queue.stderr
        files = {
            home.state_dir: 0o700,
            home.db_file: 0o600,
            Path(f"{home.db_file}-wal"): 0o600,
            Path(f"{home.db_file}-shm"): 0o600,
            home.token_file: 0o600,
            home.state_dir / "daemon.lock": 0o600,
            home.control_socket.parent: 0o700,
            home.control_socket: 0o600,
        }
        for path, mode in files.items():
            assert stat.S_IMODE(path.stat().st_mode) == mode, f"{path}: {path.stat().st_mode:o}"
        for path in home.state_dir.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    finally:
        proc.terminate()
        proc.wait(20)
    assert free_port()  # the machine is still usable; nothing else to clean up
