"""A first run explains itself: the config's path and the next step, `config init`, a bare
command's usage, shell completions and the man page from the same argument definitions."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from tests.daemon import REPO_ROOT, Daemon, Home, run_cli
from tests.fake_trakt import FakeTrakt

EXAMPLE = (resources.files("trakt_scrobbled") / "data" / "config.example.toml").read_text()


def test_the_shipped_example_is_the_repository_one() -> None:
    assert (REPO_ROOT / "config.example.toml").read_text() == EXAMPLE


def test_config_init_writes_the_commented_example_privately(tmp_path: Path) -> None:
    home = Home(tmp_path)
    result = run_cli(home, "config", "init")
    assert result.returncode == 0, result.stderr
    assert f"wrote {home.config_file}" in result.stdout
    assert "trakt-scrobbled login" in result.stdout  # the next step
    assert home.config_file.read_text() == EXAMPLE
    assert stat.S_IMODE(home.config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.config_file.parent.stat().st_mode) == 0o700
    checked = run_cli(home, "config", "check")
    assert checked.returncode == 0, checked.stderr

    home.config_file.write_text("# mine\n")
    again = run_cli(home, "config", "init")
    assert again.returncode == 1 and "--force" in again.stderr
    assert home.config_file.read_text() == "# mine\n", "never overwritten without --force"
    forced = run_cli(home, "config", "init", "--force")
    assert forced.returncode == 0 and home.config_file.read_text() == EXAMPLE
    assert [p.name for p in home.config_file.parent.iterdir()] == ["config.toml"]


def test_config_init_replaces_a_link_instead_of_writing_through_it(tmp_path: Path) -> None:
    home = Home(tmp_path)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    home.config_file.parent.mkdir(parents=True)
    home.config_file.symlink_to(victim)
    refused = run_cli(home, "config", "init")
    assert refused.returncode == 1
    forced = run_cli(home, "config", "init", "--force")
    assert forced.returncode == 0, forced.stderr
    assert victim.read_text() == "precious\n"
    assert not home.config_file.is_symlink() and home.config_file.read_text() == EXAMPLE


def test_a_bare_command_prints_usage_and_the_next_step(tmp_path: Path) -> None:
    home = Home(tmp_path)
    bare = run_cli(home)
    assert bare.returncode == 1
    assert bare.stdout.startswith("usage: trakt-scrobbled COMMAND")
    assert "trakt-scrobbled config init" in bare.stdout and str(home.config_file) in bare.stdout
    assert "Traceback" not in bare.stderr
    home.write_config("http://127.0.0.1:9")
    assert "trakt-scrobbled login" in run_cli(home).stdout


def test_a_first_run_without_config_names_the_file_and_the_next_step(
    tmp_path: Path, fake_trakt: FakeTrakt
) -> None:
    home = Home(tmp_path)
    with Daemon(home, env={"TRAKT_CLIENT_ID": "x", "TRAKT_CLIENT_SECRET": "y"}) as daemon:
        daemon.wait_for_log("ready")
        line = daemon.wait_for_log(r"no config file at (\S+): .*`trakt-scrobbled config init`")
        assert line.group(1) == str(home.config_file)
        assert daemon.terminate() == 0
        log = daemon.stderr()
    assert "no player enabled" not in log, "mpv is enabled by default: it only lacks sockets"
    assert "no IPC sockets configured" in log


def test_help_has_examples() -> None:
    home_help = subprocess.run(
        ["python", "-m", "trakt_scrobbled", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
        env={**os.environ},
    )
    assert "first steps:" in home_help.stdout and "config init" in home_help.stdout
    for command in ("queue", "identify", "completion"):
        out = subprocess.run(
            ["python", "-m", "trakt_scrobbled", command, "--help"],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            check=False,
        ).stdout
        assert "example" in out and f"trakt-scrobbled {command} " in out, out


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_are_valid_and_know_the_commands(tmp_path: Path, shell: str) -> None:
    result = run_cli(Home(tmp_path), "completion", shell)
    assert result.returncode == 0, result.stderr
    script = result.stdout
    for word in ("status", "queue", "retry", "identify", "offline", "completion"):
        assert word in script, (shell, word)
    program = shutil.which(shell)
    if program is None:
        if os.environ.get("CI") and shell == "bash":
            pytest.fail("bash is missing in CI")
        pytest.skip(f"no {shell} here to parse the script")
    path = tmp_path / f"completion.{shell}"
    path.write_text(script)
    checked = subprocess.run([program, "-n", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_bash_completes_a_subcommand(tmp_path: Path) -> None:
    """Loaded into a real bash and asked, as the shell does on TAB."""
    script = run_cli(Home(tmp_path), "completion", "bash").stdout
    path = tmp_path / "completion.bash"
    path.write_text(script)
    probe = (
        f"source {path}; COMP_WORDS=(trakt-scrobbled que); COMP_CWORD=1; "
        "COMP_LINE='trakt-scrobbled que'; COMP_POINT=${#COMP_LINE}; "
        "_shtab_trakt_scrobbled; printf '%s\\n' \"${COMPREPLY[@]}\""
    )
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=False)
    assert "queue" in out.stdout.split(), out.stdout + out.stderr


def test_bash_completes_account_names_from_the_config(tmp_path: Path) -> None:
    """`--account` offers the household's [accounts.NAME] tables, as `config accounts` lists."""
    home = Home.create(
        tmp_path, "http://127.0.0.1:9", extra="\n[accounts.alice]\n\n[accounts.albert]\n"
    )
    listed = run_cli(home, "config", "accounts")
    assert (listed.returncode, listed.stdout) == (0, "alice\nalbert\n"), listed.stderr
    script = run_cli(home, "completion", "bash").stdout
    path = tmp_path / "completion.bash"
    path.write_text(script)
    # The script runs `trakt-scrobbled`, as installed: here, this checkout's.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    program = bindir / "trakt-scrobbled"
    program.write_text(
        f'#!/bin/sh\ncd {REPO_ROOT} && exec {sys.executable} -m trakt_scrobbled "$@"\n'
    )
    program.chmod(0o755)
    words = {
        "trakt-scrobbled login --account al": {"alice", "albert"},
        "trakt-scrobbled queue --account ali": {"alice"},
    }

    def complete(line: str) -> subprocess.CompletedProcess[str]:
        probe = (
            f"source {path}; COMP_LINE='{line}'; read -ra COMP_WORDS <<< \"$COMP_LINE\"; "
            "COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_POINT=${#COMP_LINE}; "
            "_shtab_trakt_scrobbled; printf '%s\\n' \"${COMPREPLY[@]}\""
        )
        env = home.env({"PATH": f"{bindir}:{os.environ['PATH']}"})
        return subprocess.run(
            ["bash", "-c", probe], capture_output=True, text=True, env=env, check=False
        )

    for line, expected in words.items():
        out = complete(line)
        assert set(out.stdout.split()) == expected, (line, out.stdout + out.stderr)
    # A broken config: `config accounts` names the line and fails; TAB offers nothing and
    # prints nothing into the command line being typed.
    home.config_file.write_text(home.config_file.read_text() + "\n[accounts.bob\n")
    listed = run_cli(home, "config", "accounts")
    assert listed.returncode != 0 and listed.stdout == ""
    assert "config.toml:" in listed.stderr, listed.stderr
    out = complete("trakt-scrobbled login --account al")
    assert (out.stdout.split(), out.stderr) == ([], ""), out


def test_the_shipped_man_page_is_generated_from_the_parser() -> None:
    from trakt_scrobbled.cli import build_parser
    from trakt_scrobbled.manpage import render

    shipped = (resources.files("trakt_scrobbled") / "data" / "trakt-scrobbled.1").read_text()
    assert shipped == render(build_parser()), "run `make man` to refresh it"
    for word in ("config init", "queue retry", "completion", "control.sock"):
        assert word.replace("-", "\\-") in shipped, word


def test_the_man_page_renders_without_warnings(tmp_path: Path) -> None:
    groff = shutil.which("groff")
    if groff is None:
        if os.environ.get("CI"):
            pytest.fail("groff is missing in CI")
        pytest.skip("no groff here")
    page = resources.files("trakt_scrobbled") / "data" / "trakt-scrobbled.1"
    result = subprocess.run(
        [groff, "-man", "-Tutf8", "-ww", "-rLL=80n"],
        input=page.read_text(),
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "queue retry" in result.stdout and "first steps:" in result.stdout


def test_a_config_written_after_a_first_run_is_taken_without_a_restart(
    tmp_path: Path, fake_trakt: FakeTrakt
) -> None:
    """A fresh account has no ~/.config at all; `config init` while the daemon runs still counts."""
    home = Home(tmp_path)
    assert not home.config_home.exists()
    with Daemon(home, env={"TRAKT_CLIENT_ID": "x", "TRAKT_CLIENT_SECRET": "y"}) as daemon:
        daemon.wait_for_log("ready")
        assert stat.S_IMODE(home.config_file.parent.stat().st_mode) == 0o700
        mark = daemon.mark()
        assert run_cli(home, "config", "init").returncode == 0
        daemon.wait_for_log("config reloaded", since=mark)
        assert daemon.terminate() == 0
