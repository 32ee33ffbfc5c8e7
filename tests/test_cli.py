"""The command line as a user meets it: help, honest stubs, clear errors without tracebacks."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

CONTRACT = ["run", "login", "logout", "status", "queue", "identify", "config", "doctor"]


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trakt_scrobbled", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
        check=False,
    )


@pytest.fixture
def home_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_RUNTIME_DIR=str(tmp_path / "run"),
    )
    (tmp_path / "run").mkdir(mode=0o700)
    for key in (
        "TRAKT_CLIENT_ID",
        "TRAKT_CLIENT_SECRET",
        "CONFIGURATION_DIRECTORY",
        "STATE_DIRECTORY",
        "RUNTIME_DIRECTORY",
        "JOURNAL_STREAM",
    ):
        env.pop(key, None)
    return env


def test_help_lists_every_subcommand_of_the_contract() -> None:
    result = cli("--help")
    assert result.returncode == 0
    for name in CONTRACT:
        assert name in result.stdout


@pytest.mark.parametrize(
    ("command", "code"),
    [
        ("status", 3),  # no daemon answers in a fresh home
        ("doctor", 1),  # the defaults lack a client id and a login
    ],
)
def test_status_and_doctor_in_a_fresh_home(
    command: str, code: int, home_env: dict[str, str]
) -> None:
    with socket.socket() as sock:  # a port nothing listens on, not a real daemon's 8642
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = Path(home_env["XDG_CONFIG_HOME"]) / "trakt-scrobbled" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f"[server]\nport = {port}\n")
    home_env["PATH"] = "/nonexistent"  # no systemctl: the doctor must not ask the real one
    result = cli(command, env=home_env)
    assert result.returncode == code, result.stdout + result.stderr
    assert "not built yet" not in result.stderr
    assert "Traceback" not in result.stderr


def test_every_subcommand_takes_config(tmp_path: Path, home_env: dict[str, str]) -> None:
    for name in CONTRACT:
        sub = ["config", "check"] if name == "config" else [name]
        result = cli(*sub, "--help", env=home_env)
        assert result.returncode == 0, name
        assert "--config" in result.stdout, name


def test_config_check_without_file_uses_defaults(home_env: dict[str, str]) -> None:
    result = cli("config", "check", env=home_env)
    assert result.returncode == 0, result.stderr
    assert "config OK" in result.stdout


def test_config_check_reports_every_problem_with_key_and_line(
    tmp_path: Path, home_env: dict[str, str]
) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(
        '[scrobble]\nwatched_treshold = 90\n\n[server]\nport = 70000\n\n[mpv]\nenabled = "yes"\n'
    )
    result = cli("config", "check", "--config", str(cfg), env=home_env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "scrobble.watched_treshold" in result.stderr
    assert "watched_threshold" in result.stderr  # the did-you-mean
    assert "server.port" in result.stderr
    assert "mpv.enabled" in result.stderr
    assert ":2:" in result.stderr and ":5:" in result.stderr and ":8:" in result.stderr


def test_config_check_syntax_error_names_line_and_column(
    tmp_path: Path, home_env: dict[str, str]
) -> None:
    cfg = tmp_path / "broken.toml"
    cfg.write_text('[trakt]\nclient_id = "abc\n')
    result = cli("config", "check", "--config", str(cfg), env=home_env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert re.search(r"broken\.toml:2:\d+: invalid TOML", result.stderr), result.stderr


def test_explicit_missing_config_is_an_error(tmp_path: Path, home_env: dict[str, str]) -> None:
    result = cli("run", "--config", str(tmp_path / "nope.toml"), env=home_env)
    assert result.returncode == 1
    assert "nope.toml" in result.stderr
    assert "Traceback" not in result.stderr


def test_queue_on_empty_state(home_env: dict[str, str]) -> None:
    result = cli("queue", env=home_env)
    assert result.returncode == 0, result.stderr
    assert "empty" in result.stdout
    result = cli("queue", "drop", "7", env=home_env)
    assert result.returncode == 1
    assert "no row 7" in result.stderr
