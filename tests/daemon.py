"""The real `trakt-scrobbled` command as a subprocess, in folders of its own, for end-to-end tests.

A `Home` is a fake `$HOME` with its own XDG config and state folders and a config file pointing
`api_url` at a test server. A `Daemon` runs `python -m trakt_scrobbled run` (or any other
subcommand) there, with stdout and stderr going to files that the test reads while it runs:
`wait_for_log` waits, bounded, for a line. A `NotifySocket` plays systemd's notify socket.

    with FakeTrakt() as fake, Daemon(Home.create(tmp_path, fake.url)) as daemon:
        daemon.wait_for_log(r"logged in")
        assert daemon.terminate() == 0
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.fake_trakt import FakeTrakt, TokenPair
from trakt_scrobbled.clock import SystemClock
from trakt_scrobbled.events import Scrobble
from trakt_scrobbled.outbox import Outbox, QueueCounts
from trakt_scrobbled.store import open_db
from trakt_scrobbled.trakt.auth import Token, TokenStore

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-secret"
APP_DIR = "trakt-scrobbled"
REPO_ROOT = Path(__file__).resolve().parent.parent

_POLL = 0.05
_TAIL = 4000

# Variables of the test runner's environment that would change what the subprocess does.
_SCRUBBED = (
    "TRAKT_CLIENT_ID",
    "TRAKT_CLIENT_SECRET",
    "CONFIGURATION_DIRECTORY",
    "STATE_DIRECTORY",
    "RUNTIME_DIRECTORY",
    "NOTIFY_SOCKET",
    "JOURNAL_STREAM",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Home:
    """A private `$HOME` with XDG config and state folders; nothing touches the real ones."""

    root: Path
    server_port: int = field(default_factory=free_port)
    """The local listener's port, the same in every config this home writes."""

    @classmethod
    def create(
        cls,
        root: Path,
        api_url: str,
        *,
        client_id: str | None = CLIENT_ID,
        client_secret: str | None = CLIENT_SECRET,
        extra: str = "",
        players: str = "[mpv]\nenabled = false\n",
    ) -> Home:
        """A home whose config talks to `api_url`; None leaves a credential out of the file.

        No player is enabled and the local listener gets a free port, so that tests running
        side by side never meet; `extra` is TOML appended to the file (its own tables).
        """
        home = cls(root)
        home.write_config(
            api_url, client_id=client_id, client_secret=client_secret, extra=extra, players=players
        )
        return home

    @property
    def config_home(self) -> Path:
        return self.root / "config"

    @property
    def state_home(self) -> Path:
        return self.root / "state"

    @property
    def config_file(self) -> Path:
        return self.config_home / APP_DIR / "config.toml"

    @property
    def state_dir(self) -> Path:
        return self.state_home / APP_DIR

    @property
    def runtime_dir(self) -> Path:
        """This home's `$XDG_RUNTIME_DIR` (0700, as logind makes it): the control socket's."""
        return self.root / "run"

    @property
    def control_socket(self) -> Path:
        return self.runtime_dir / APP_DIR / "control.sock"

    @property
    def db_file(self) -> Path:
        return self.state_dir / "state.db"

    @property
    def token_file(self) -> Path:
        return self.state_dir / "token.json"

    def write_config(
        self,
        api_url: str,
        *,
        client_id: str | None = CLIENT_ID,
        client_secret: str | None = CLIENT_SECRET,
        extra: str = "",
        players: str = "[mpv]\nenabled = false\n",
    ) -> Path:
        """`players` holds the player tables (none enabled by default); `extra` more tables."""
        lines = ["[trakt]", f'api_url = "{api_url}"']
        if client_id is not None:
            lines.append(f'client_id = "{client_id}"')
        if client_secret is not None:
            lines.append(f'client_secret = "{client_secret}"')
        lines += ["", players, "[server]", f"port = {self.server_port}", ""]
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text("\n".join(lines) + extra, encoding="utf-8")
        return self.config_file

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The runner's environment minus what would leak in, with this home's folders."""
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        self.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        env.update(
            HOME=str(self.root),
            XDG_CONFIG_HOME=str(self.config_home),
            XDG_STATE_HOME=str(self.state_home),
            XDG_RUNTIME_DIR=str(self.runtime_dir),
        )
        env.update(extra or {})
        return env


def log_in(fake: FakeTrakt, home: Home) -> TokenPair:
    """Store a token as `trakt-scrobbled login` would have, without the device flow."""
    pair = fake.issue_token()
    TokenStore(home.token_file).save(
        Token(pair.access_token, pair.refresh_token, pair.created_at + pair.expires_in)
    )
    return pair


def enqueue(home: Home, *scrobbles: Scrobble) -> None:
    """Queue scrobbles in the daemon's outbox, as an earlier run would have left them."""
    conn = open_db(home.db_file)
    try:
        outbox = Outbox(conn, SystemClock())
        for scrobble in scrobbles:
            outbox.enqueue(scrobble)
    finally:
        conn.close()


def queue_counts(home: Home) -> QueueCounts:
    """The outbox as the daemon left it (or as it is now: SQLite lets both look)."""
    conn = open_db(home.db_file)
    try:
        return Outbox(conn, SystemClock()).counts()
    finally:
        conn.close()


def run_cli(
    home: Home, *args: str, env: Mapping[str, str] | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """A one-shot `trakt-scrobbled ARGS` in `home`, waited for."""
    return subprocess.run(
        [sys.executable, "-m", "trakt_scrobbled", *args],
        capture_output=True,
        text=True,
        env=home.env(env),
        cwd=REPO_ROOT,
        timeout=timeout,
        check=False,
    )


class Daemon:
    """`python -m trakt_scrobbled COMMAND` running in `home`; killed at the latest on exit."""

    def __init__(
        self,
        home: Home,
        command: Sequence[str] = ("run",),
        *,
        verbose: bool = False,
        env: Mapping[str, str] | None = None,
        name: str = "daemon",
    ) -> None:
        self.home = home
        self.argv = [sys.executable, "-m", "trakt_scrobbled", *command]
        if verbose:
            self.argv.append("-v")
        self._env = home.env(env)
        self.stdout_path = home.root / f"{name}.stdout"
        self.stderr_path = home.root / f"{name}.stderr"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        """Starts the process unless `start()` already did."""
        return self if self._proc is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.running:
            self.kill()

    def start(self) -> Self:
        if self._proc is not None:
            raise RuntimeError("already started; make a new Daemon to start again")
        self.home.root.mkdir(parents=True, exist_ok=True)
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=self._env,
                cwd=REPO_ROOT,
            )
        return self

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise RuntimeError("not started")
        return self._proc

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    # --- output ----------------------------------------------------------------------------

    def stderr(self) -> str:
        return _read(self.stderr_path)

    def stdout(self) -> str:
        return _read(self.stdout_path)

    def mark(self, stream: str = "stderr") -> int:
        """Where the output ends now: pass it as `since` to wait only for what comes next."""
        return len(self._text(stream))

    def wait_for_log(
        self,
        pattern: str | re.Pattern[str],
        timeout: float = 10.0,
        *,
        since: int = 0,
        stream: str = "stderr",
    ) -> re.Match[str]:
        """The first complete line matching `pattern` after offset `since` (`mark()`).

        Fails at once if the process exits without writing it, else after `timeout` seconds.
        The match's positions are offsets into the whole output.
        """
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            exited = self.proc.poll() is not None  # read after this, so no line is missed
            text = self._text(stream)
            complete = text[: text.rfind("\n") + 1] if not exited else text
            found = regex.search(complete, since)
            if found is not None:
                return found
            if exited:
                raise AssertionError(
                    f"{self._what()} exited ({self.proc.returncode}) without logging "
                    f"{regex.pattern!r}:\n{self._tails()}"
                )
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{self._what()}: no line matching {regex.pattern!r} within {timeout:g} s:\n"
                    f"{self._tails()}"
                )
            time.sleep(_POLL)

    def wait_until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Bounded wait for `condition` (state the process writes: files, the database)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None and not condition():
                raise AssertionError(
                    f"{self._what()} exited ({self.proc.returncode}) before the condition held:"
                    f"\n{self._tails()}"
                )
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{self._what()}: the condition did not hold within {timeout:g} s:\n"
                    f"{self._tails()}"
                )
            time.sleep(_POLL)

    def _text(self, stream: str) -> str:
        if stream == "stderr":
            return self.stderr()
        if stream == "stdout":
            return self.stdout()
        raise ValueError(f"no stream {stream!r}")

    def _what(self) -> str:
        return " ".join(self.argv[2:])

    def _tails(self) -> str:
        parts = []
        for name, text in (("stdout", self.stdout()), ("stderr", self.stderr())):
            if text:
                cut = "...\n" if len(text) > _TAIL else ""
                parts.append(f"--- {name} ---\n{cut}{text[-_TAIL:]}")
        return "\n".join(parts) or "(no output)"

    # --- ending ----------------------------------------------------------------------------

    def wait_exit(self, timeout: float = 10.0) -> int:
        """The exit status; fails (and kills the process) if it does not exit in time."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self._what()} did not exit within {timeout:g} s:\n{self._tails()}"
            ) from None

    def signal(self, sig: signal.Signals) -> None:
        if self.running:
            self.proc.send_signal(sig)

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM, as systemd stops the service; returns the exit status."""
        self.signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def interrupt(self, timeout: float = 10.0) -> int:
        """SIGINT, as Ctrl-C in a terminal; returns the exit status."""
        self.signal(signal.SIGINT)
        return self.wait_exit(timeout)

    def kill(self) -> int:
        """SIGKILL: a crash, or `kill -9`; returns the exit status."""
        if self.running:
            self.proc.kill()
        return self.proc.wait(10.0)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


class NotifySocket:
    """What systemd hears: an AF_UNIX datagram socket given to the daemon as NOTIFY_SOCKET."""

    def __init__(self) -> None:
        # Under /tmp, not pytest's tmp_path: a socket path must fit in 108 bytes.
        self._dir = Path(tempfile.mkdtemp(prefix="tsn-"))
        self.path = self._dir / "notify"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self.path))
        self.messages: list[str] = []
        """Every datagram received so far, in order."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    @property
    def env(self) -> dict[str, str]:
        return {"NOTIFY_SOCKET": str(self.path)}

    def wait_for(
        self, pattern: str | re.Pattern[str], timeout: float = 10.0, *, since: int = 0
    ) -> re.Match[str]:
        """The first datagram, from index `since` of `messages`, that `pattern` matches."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        index = since
        while True:
            while index < len(self.messages):
                found = regex.search(self.messages[index])
                index += 1
                if found is not None:
                    return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no notify datagram matching {regex.pattern!r} within {timeout:g} s; "
                    f"got {self.messages!r}"
                )
            self._sock.settimeout(remaining)
            with contextlib.suppress(TimeoutError):
                self.messages.append(self._sock.recv(65536).decode("utf-8", errors="replace"))
