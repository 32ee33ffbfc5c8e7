"""`trakt-scrobbled doctor`: each check against the real thing it looks at, then the command, then
the daemon's own messages for what a user can get wrong (each said once, with what to do)."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemon import (
    CLIENT_ID,
    CLIENT_SECRET,
    Daemon,
    Home,
    enqueue,
    free_port,
    log_in,
    queue_counts,
    run_cli,
)
from tests.fake_trakt import FakeTrakt
from tests.kodi_fixture import KodiProcess
from tests.realplayers import MpvLauncher
from trakt_scrobbled.config import KodiConfig, MpvConfig, PlexConfig, ServerConfig, TraktConfig
from trakt_scrobbled.control import ControlPath, ControlServer
from trakt_scrobbled.doctor import (
    Check,
    CheckStatus,
    check_config,
    check_daemon,
    check_kodi,
    check_login,
    check_mpv,
    check_plex,
    check_service,
    check_state,
    check_token,
    check_trakt,
)
from trakt_scrobbled.events import Ids, MediaType, Scrobble, ScrobbleVerb, TraktItem
from trakt_scrobbled.paths import Paths
from trakt_scrobbled.store import SCHEMA_VERSION, open_db
from trakt_scrobbled.trakt.auth import Token, TokenStore

OK, NOTE, FAIL = CheckStatus.OK, CheckStatus.NOTE, CheckStatus.FAIL
NO_SYSTEMCTL = {"PATH": "/nonexistent"}
"""For the command: never ask the machine's own systemd about its own trakt-scrobbled."""
SECRET = "plex-secret-0123456789abcdef"


def statuses(checks: tuple[Check, ...]) -> list[CheckStatus]:
    return [c.status for c in checks]


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(config_file=tmp_path / "config.toml", state_dir=tmp_path / "state")


def trakt_config(fake: FakeTrakt, client_id: str = CLIENT_ID) -> TraktConfig:
    return TraktConfig(client_id=client_id, client_secret=CLIENT_SECRET, api_url=fake.url)


# --- config and files ---------------------------------------------------------------------------


def test_config_valid_missing_and_broken(paths: Paths) -> None:
    config, checks = check_config(paths.config_file, {})
    assert config is not None
    assert statuses(checks) == [OK]
    assert "defaults apply" in checks[0].message

    config, checks = check_config(paths.config_file, {}, explicit=True)
    assert config is None
    assert statuses(checks) == [FAIL], "one problem, one failure"
    assert "file not found" in checks[0].message and str(paths.config_file) in checks[0].message

    paths.config_file.write_text('[server]\nport = 70000\n[mpv]\nenabled = "yes"\n')
    config, checks = check_config(paths.config_file, {})
    assert config is None
    assert statuses(checks) == [FAIL, FAIL]
    assert "config check" in checks[0].hint
    assert ":2:" in checks[0].message and "server.port" in checks[0].message
    assert ":4:" in checks[1].message and "mpv.enabled" in checks[1].message


def test_state_folder(paths: Paths) -> None:
    (check,) = check_state(paths)
    assert check.status is NOTE and "does not exist yet" in check.message

    paths.state_dir.mkdir(mode=0o755)
    paths.state_dir.chmod(0o755)
    checks = check_state(paths)
    assert statuses(checks) == [FAIL, NOTE]  # the mode; no database yet
    assert "mode 0755" in checks[0].message
    assert checks[0].hint == f"chmod 700 {paths.state_dir}"

    paths.state_dir.chmod(0o700)
    open_db(paths.db_file).close()
    checks = check_state(paths)
    assert statuses(checks) == [OK, OK]
    assert "0 scrobble(s) queued, 0 failed" in checks[1].message


def test_database_newer_or_damaged(paths: Paths) -> None:
    paths.state_dir.mkdir(mode=0o700)
    conn = sqlite3.connect(paths.db_file)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    check = check_state(paths)[-1]
    assert check.status is FAIL
    assert "newer trakt-scrobbled" in check.message and check.hint == "upgrade trakt-scrobbled"

    paths.db_file.write_bytes(b"this is not a database" * 100)
    check = check_state(paths)[-1]
    assert check.status is FAIL
    assert "unreadable" in check.message and "mv " in check.hint
    assert paths.db_file.read_bytes().startswith(b"this is not"), "left untouched"


def test_token_file(paths: Paths) -> None:
    now = time.time()
    check, token = check_token(paths.token_file, now=now)
    assert (check.status, token) == (FAIL, None)
    assert "not logged in" in check.message and "trakt-scrobbled login" in check.hint

    store = TokenStore(paths.token_file)
    store.save(Token("access-x", "refresh-x", now + 3600))
    check, token = check_token(paths.token_file, now=now)
    assert check.status is OK and token is not None
    assert "(in 1 h 00 min)" in check.message
    assert "access-x" not in check.render()

    paths.token_file.chmod(0o644)
    check, token = check_token(paths.token_file, now=now)
    assert check.status is FAIL and token is None
    assert check.hint == f"chmod 600 {paths.token_file}"

    store.save(Token("access-x", "refresh-x", now - 60))
    check, token = check_token(paths.token_file, now=now)
    assert check.status is FAIL and "expired" in check.message and token is None

    paths.token_file.write_text("{not json")
    check, _ = check_token(paths.token_file, now=now)
    assert check.status is FAIL and "damaged" in check.message


# --- Trakt ----------------------------------------------------------------------------------


async def test_trakt_checks(fake_trakt: FakeTrakt) -> None:
    (check,) = await check_trakt(TraktConfig(api_url=fake_trakt.url))
    assert check.status is FAIL and "[trakt] client_id" in check.hint

    (check,) = await check_trakt(trakt_config(fake_trakt, client_id="not-our-app"))
    assert check.status is FAIL and "rejected the client id (403)" in check.message
    assert "[trakt] client_id" in check.hint

    nowhere = TraktConfig(
        client_id="x", client_secret="y", api_url=f"http://127.0.0.1:{free_port()}"
    )
    (check,) = await check_trakt(nowhere)
    assert check.status is FAIL and "not reachable" in check.message
    assert "Connection refused" in check.message  # the reason, in the OS's words

    (check,) = await check_trakt(trakt_config(fake_trakt))
    assert check.status is OK

    no_secret = TraktConfig(client_id=CLIENT_ID, api_url=fake_trakt.url)
    checks = await check_trakt(no_secret)
    assert statuses(checks) == [FAIL, OK]
    assert "[trakt] client_secret" in checks[0].hint


async def test_login_accepted_or_rejected(fake_trakt: FakeTrakt) -> None:
    pair = fake_trakt.issue_token()
    good = Token(pair.access_token, pair.refresh_token, time.time() + 3600)
    check = await check_login(trakt_config(fake_trakt), good)
    assert check.status is OK
    sent = fake_trakt.requests("/sync/history")[-1]
    assert sent.headers["authorization"] == f"Bearer {pair.access_token}"

    stale = Token("revoked-token", "r", time.time() + 3600)
    check = await check_login(trakt_config(fake_trakt), stale)
    assert check.status is FAIL and "rejected the stored login" in check.message
    assert check.hint == "run `trakt-scrobbled login`"
    assert "revoked-token" not in check.render()


# --- players ----------------------------------------------------------------------------------


async def test_mpv_not_configured_missing_stale_and_answering(
    sock_dir: Path, mpv_launcher: MpvLauncher
) -> None:
    assert await check_mpv(MpvConfig(enabled=False)) == ()

    (check,) = await check_mpv(MpvConfig(enabled=True))
    assert check.status is FAIL and "no IPC socket" in check.message
    assert "input-ipc-server" in check.hint and "[mpv] sockets" in check.hint

    pattern = f"{sock_dir}/*.sock"
    (check,) = await check_mpv(MpvConfig(sockets=(pattern,)))
    assert check.status is NOTE
    assert check.message == f"no mpv socket matches {pattern}"
    assert f"--input-ipc-server={sock_dir}/mpv.sock " in check.hint, "a path, never a glob"
    (check,) = await check_mpv(MpvConfig(sockets=("/nonexistent-dir/mpv.sock",)))
    assert check.status is NOTE and "/nonexistent-dir does not exist" in check.message

    stale = sock_dir / "stale.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(stale))  # bound, never listening: what a killed mpv leaves
    (check,) = await check_mpv(MpvConfig(sockets=(str(stale),)))
    assert check.status is NOTE and "stale" in check.message

    plain = sock_dir / "file.sock"
    plain.write_text("")
    (check,) = await check_mpv(MpvConfig(sockets=(str(plain),)))
    assert check.status is FAIL and "not a socket" in check.message

    mpv = await mpv_launcher.astart()
    checks = await check_mpv(MpvConfig(sockets=(pattern,)))
    assert len(checks) == 3

    def about(path: Path) -> Check:
        return next(c for c in checks if f"{path} " in f"{c.message} ")

    assert about(mpv.socket_path).status is OK
    assert about(mpv.socket_path).message.startswith("mpv ")
    assert about(stale).status is NOTE
    assert about(plain).status is FAIL


async def test_kodi_nothing_listening_or_not_kodi(fake_trakt: FakeTrakt) -> None:
    assert await check_kodi(KodiConfig(enabled=False)) == ()
    port = free_port()
    (check,) = await check_kodi(KodiConfig(enabled=True, port=port))
    assert check.status is FAIL
    assert check.message == f"Kodi not reachable on 127.0.0.1:{port}: Connection refused"
    assert "Allow remote control from applications on this system" in check.hint

    (check,) = await check_kodi(KodiConfig(enabled=True, port=fake_trakt.port))  # HTTP
    assert check.status is FAIL and "not as Kodi's JSON-RPC" in check.message


@pytest.mark.kodi
async def test_kodi_answers(kodi: KodiProcess) -> None:
    (check,) = await check_kodi(KodiConfig(enabled=True, port=kodi.port))
    assert check.status is OK, check


@pytest.mark.parametrize(
    ("host", "shown", "elsewhere"),
    [
        ("127.0.0.1", "http://127.0.0.1:8642/plex/", True),
        ("0.0.0.0", "http://<this machine's address>:8642/plex/", False),
        ("192.168.1.5", "http://192.168.1.5:8642/plex/", False),
    ],
)
def test_plex_url_with_the_secret_masked(host: str, shown: str, elsewhere: bool) -> None:
    assert check_plex(PlexConfig(enabled=False), ServerConfig()) == ()
    (check,) = check_plex(PlexConfig(enabled=True, secret=SECRET), ServerConfig(host=host))
    assert check.status is OK
    assert f"{shown}<your [plex] secret>" in check.message
    assert SECRET not in check.render()
    assert ('[server] host = "0.0.0.0"' in check.hint) is elsewhere


# --- the daemon and the service --------------------------------------------------------------


async def test_daemon_not_running(tmp_path: Path) -> None:
    (check,) = await check_daemon(ControlPath(tmp_path / "run", ours=True))
    assert check.status is NOTE and "not running" in check.message
    assert "trakt-scrobbled run" in check.hint


async def test_a_control_folder_others_may_enter_fails(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    (check,) = await check_daemon(ControlPath(folder, ours=True))
    assert check.status is FAIL and "chmod 700" in check.message


async def test_a_failing_player_adapter_fails_the_daemon_check(tmp_path: Path) -> None:
    doc = {
        "version": "0",
        "pid": 42,
        "uptime": 10.0,
        "players": [
            {"name": "mpv", "connected": [], "ignored": {}, "failing": None},
            {
                "name": "kodi",
                "connected": [],
                "ignored": {},
                "failing": {"error": "RuntimeError: boom", "crashes": 2},
            },
        ],
    }

    async def answer(command: str, args: Mapping[str, Any]) -> Any:
        assert command == "status"
        return doc

    where = ControlPath(tmp_path / "run", ours=True)
    server = ControlServer(where, answer)
    await server.start()
    try:
        checks = await check_daemon(where)
    finally:
        await server.stop()
    assert statuses(checks) == [OK, FAIL]
    assert "kodi adapter failed (RuntimeError: boom)" in checks[1].message
    assert "journalctl" in checks[1].hint


def _systemctl_saying(folder: Path, out: str, code: int) -> str:
    """A `systemctl` that prints what a user manager would: the unit's state."""
    script = folder / "systemctl"
    script.write_text(f"#!/bin/sh\necho {out}\nexit {code}\n")
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize(
    ("said", "code", "expected"),
    [("active", 0, OK), ("inactive", 3, NOTE), ("failed", 3, FAIL)],
)
async def test_service_states(tmp_path: Path, said: str, code: int, expected: CheckStatus) -> None:
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    unit = tmp_path / "config" / "systemd" / "user" / "trakt-scrobbled.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Unit]\n")
    checks = await check_service(env, systemctl=_systemctl_saying(tmp_path, said, code))
    assert statuses(checks) == [OK, expected]
    assert said in checks[1].message


async def test_service_without_systemd_is_a_note(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    checks = await check_service(env, systemctl=None)
    assert statuses(checks) == [NOTE, NOTE]
    assert "service install" in checks[0].hint
    bus_error = _systemctl_saying(tmp_path, "Failed to connect to bus: No medium found", 1)
    checks = await check_service(env, systemctl=bus_error)
    assert statuses(checks) == [NOTE, NOTE]
    assert "no systemd user manager" in checks[1].message


# --- the command ------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeTrakt]:
    with FakeTrakt() as fake:
        fake.add_movie("The Matrix", 1999, trakt=481)
        yield fake


def lines_of(output: str, tag: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(tag)]


def test_all_green(
    tmp_path: Path, fake: FakeTrakt, sock_dir: Path, mpv_launcher: MpvLauncher
) -> None:
    home = Home.create(tmp_path, fake.url, players=f'[mpv]\nsockets = ["{sock_dir}/*.sock"]\n')
    log_in(fake, home)
    mpv = mpv_launcher.start()
    with Daemon(home) as daemon:
        daemon.wait_for_log("ready")
        result = run_cli(home, "doctor", env=NO_SYSTEMCTL)
        assert daemon.terminate() == 0
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert lines_of(out, "[FAIL]") == []
    assert out.rstrip().endswith("nothing failed")
    for expected in (
        "[ok]   config: ",
        "[ok]   state: ",
        "[ok]   database: ",
        "[ok]   login: token valid until",
        "[ok]   trakt: ",
        "[ok]   login: Trakt accepts the login",
        "[ok]   mpv: mpv ",
        f"answers on {mpv.socket_path}",
        f"[ok]   daemon: running (pid {daemon.pid}",
        "[note] service: ",
    ):
        assert expected in out, f"{expected!r} not in:\n{out}"
    # Every line is a verdict; nothing else is printed.
    assert all(line.startswith(("[ok]", "[note]", "nothing failed")) for line in out.splitlines())


FAILING: list[tuple[str, dict[str, str], str, str]] = [
    # (case, Home.create arguments as TOML, the FAIL line, its hint)
    ("broken config", {"extra": "[scrobble]\nwatched_treshold = 90\n"},
     "[FAIL] config: ", "scrobble.watched_treshold"),
    ("missing token", {}, "[FAIL] login: not logged in", "-> run `trakt-scrobbled login`"),
    ("expired token", {}, "[FAIL] login: the Trakt login expired",
     "or run `trakt-scrobbled login`"),
    ("rejected token", {}, "[FAIL] login: Trakt rejected the stored login",
     "-> run `trakt-scrobbled login`"),
    ("wrong client id", {}, "[FAIL] trakt: Trakt rejected the client id (403)",
     "-> check [trakt] client_id"),
    ("kodi not listening",
     {"players": "[mpv]\nenabled = false\n[kodi]\nenabled = true\nport = PORT\n"},
     "[FAIL] kodi: Kodi not reachable on 127.0.0.1:", "Allow remote control from applications"),
    ("mpv without sockets", {"players": "[mpv]\nenabled = true\n"},
     "[FAIL] mpv: enabled, but no IPC socket is configured", "-> put `input-ipc-server="),
    ("state folder 0755", {}, "[FAIL] state: ", "-> chmod 700 "),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "toml", "fail_line", "hint"), FAILING, ids=[c[0] for c in FAILING]
)
def test_failing_checks(
    tmp_path: Path, fake: FakeTrakt, case: str, toml: dict[str, str], fail_line: str, hint: str
) -> None:
    players = toml.get("players", "[mpv]\nenabled = false\n").replace("PORT", str(free_port()))
    client_id = "not-our-app" if case == "wrong client id" else CLIENT_ID
    home = Home.create(
        tmp_path, fake.url, client_id=client_id, players=players, extra=toml.get("extra", "")
    )
    if case != "missing token":
        log_in(fake, home)
    if case in ("expired token", "rejected token"):
        alive = time.time() + (-60 if case == "expired token" else 3600)
        TokenStore(home.token_file).save(Token("not-a-token-of-trakt", "r", alive))
    if case == "state folder 0755":
        home.state_dir.chmod(0o755)

    result = run_cli(home, "doctor", env=NO_SYSTEMCTL)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    failed = [line for line in lines_of(result.stdout, fail_line) if hint in line]
    assert failed, f"no {fail_line!r} line with {hint!r} in:\n{result.stdout}"
    assert "check(s) failed" in result.stderr
    assert "not-a-token-of-trakt" not in result.stdout + result.stderr


def test_help_and_config_option(tmp_path: Path, fake: FakeTrakt) -> None:
    home = Home.create(tmp_path, fake.url)
    result = run_cli(home, "doctor", "--config", str(tmp_path / "nope.toml"), env=NO_SYSTEMCTL)
    assert result.returncode == 1
    assert f"[FAIL] config: {tmp_path / 'nope.toml'}: file not found" in result.stdout
    assert "[note] doctor: Trakt and the players not checked" in result.stdout


# --- the daemon's own messages ----------------------------------------------------------------


def movie_start(play: str) -> Scrobble:
    item = TraktItem(MediaType.MOVIE, Ids(trakt=481), title="The Matrix", year=1999)
    return Scrobble(ScrobbleVerb.START, play, item, 10.0)


def test_account_errors_say_what_to_do_once(tmp_path: Path, fake: FakeTrakt) -> None:
    """A deactivated account is a dead letter per row; a locked one or one that needs VIP
    concerns the whole account: its queue is parked with one message, and a reload (once the
    person fixed it) sends what waited."""
    home = Home.create(tmp_path, fake.url)
    log_in(fake, home)
    enqueue(home, movie_start("a"), movie_start("b"), movie_start("c"))
    fake.fail_next(1, status=410, path_prefix="/scrobble")
    with Daemon(home) as daemon:
        daemon.wait_for_log("ready")
        daemon.wait_for_log(
            r"gave up on start The Matrix \(1999\): "
            + re.escape(
                "Trakt answered 410 to /scrobble/start: the Trakt account is deactivated: "
                "log in at https://trakt.tv to reactivate it"
            )
        )
        fake.wait_for(lambda r: r.path == "/scrobble/start" and r.status == 201, count=2)
        for status, hint in (
            (423, "the Trakt account is locked: run the history analysis at "
             "https://trakt.tv/settings/data"),
            (426, "this needs Trakt VIP: see https://trakt.tv/vip"),
        ):  # fmt: skip
            mark = daemon.mark()
            fake.fail_next(1, status=status, path_prefix="/scrobble")
            enqueue(home, movie_start(f"p{status}"), movie_start(f"q{status}"))
            assert run_cli(home, "reload").returncode == 0  # wakes the sender to the new rows
            daemon.wait_for_log(
                rf"Trakt answered {status} to /scrobble/start: {re.escape(hint)}[^;]*; "
                r"this account's scrobbles stay queued \(none is lost\): once that is fixed, "
                r"`trakt-scrobbled reload` sends them",
                since=mark,
            )
            assert queue_counts(home).pending == 2 and queue_counts(home).dead == 1
            assert run_cli(home, "reload").returncode == 0
            daemon.wait_until(lambda: queue_counts(home).pending == 0)
        assert daemon.terminate() == 0
        log = daemon.stderr()
    assert log.count("gave up on") == 1
    assert log.count("stay queued (none is lost)") == 2, "one message per parking"


def test_config_mistakes_are_said_once(tmp_path: Path, fake: FakeTrakt, sock_dir: Path) -> None:
    """A wrong client id, an mpv socket that is not there, Kodi's remote control off, Plex
    webhooks with a wrong secret: each said once, whatever the retries."""
    kodi_port = free_port()
    missing = sock_dir / "nope.sock"
    home = Home.create(
        tmp_path,
        fake.url,
        client_id="not-our-app",
        players=(
            f'[mpv]\nsockets = ["{missing}"]\n'
            f"[kodi]\nenabled = true\nport = {kodi_port}\n"
            f'[plex]\nenabled = true\nsecret = "{SECRET}"\n'
        ),
    )
    log_in(fake, home)
    enqueue(home, movie_start("a"))
    with Daemon(home) as daemon:
        daemon.wait_for_log("ready")
        daemon.wait_for_log(
            r"Trakt answered 403 to /scrobble/start: Trakt rejected the client id: "
            r"check \[trakt\] client_id .*; scrobbles stay queued until the config is fixed"
        )
        daemon.wait_for_log(rf"mpv: no socket at {re.escape(str(missing))} yet: start mpv")
        daemon.wait_for_log(rf"kodi: 127\.0\.0\.1:{kodi_port} not reachable")
        for _ in range(3):
            answer = httpx.post(
                f"http://127.0.0.1:{home.server_port}/plex/wrong-secret-0123456789",
                data={"payload": json.dumps({"event": "media.play"})},
            )
            assert answer.status_code == 404
        time.sleep(2.5)  # Kodi and mpv retry meanwhile (Kodi after 1 s, then 2 s)
        assert daemon.terminate() == 0
        log = daemon.stderr()
    assert len(fake.requests("/scrobble")) == 1, "a rejected client id is not retried"
    assert log.count("check [trakt] client_id") == 1
    assert log.count(f"mpv: no socket at {missing} yet") == 1
    assert log.count(f"kodi: 127.0.0.1:{kodi_port} not reachable") == 1
    assert SECRET not in log
    assert "wrong-secret" not in log


def test_no_client_id_is_said_once(tmp_path: Path, fake: FakeTrakt) -> None:
    home = Home.create(tmp_path, fake.url, client_id=None)
    log_in(fake, home)
    enqueue(home, movie_start("a"))
    with Daemon(home) as daemon:
        daemon.wait_for_log("ready")  # signals are handled from then on
        daemon.wait_for_log(
            r"no Trakt client id: set \[trakt\] client_id in the config or TRAKT_CLIENT_ID; "
            r"scrobbles stay queued until the config is fixed"
        )
        assert daemon.terminate() == 0
        log = daemon.stderr()
    assert log.count("no Trakt client id") == 1
    assert fake.requests("/scrobble") == []
