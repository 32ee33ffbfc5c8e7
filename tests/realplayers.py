"""Real players for tests: media made with ffmpeg, headless mpv processes, event recorders.

Fixtures are defined as ``<name>_fixture`` with ``name=<name>``: import the ``_fixture`` objects
into a test module and ask for them by their short names.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from trakt_scrobbled.events import (
    Ended,
    EndReason,
    Paused,
    PlayerEvent,
    Playing,
    Progressed,
    Resumed,
    Seeked,
)
from trakt_scrobbled.players import Player

MPV_MISSING = "mpv not installed: apt-get install mpv ffmpeg"
MEDIA_SECONDS = 150.0
START_TIMEOUT = 5.0

E = TypeVar("E", Playing, Paused, Resumed, Seeked, Progressed, Ended)
"""One kind of player event, for `EventRecorder.wait_for`."""


def require_binaries(*names: str, message: str) -> None:
    """Skip when a player is missing on a developer's machine; fail in CI, where it must be."""
    if all(shutil.which(name) for name in names):
        return
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_mpv() -> None:
    require_binaries("mpv", "ffmpeg", message=MPV_MISSING)


# --- media ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaFiles:
    """Video-only test files with release-style names, `MEDIA_SECONDS` long."""

    movie: Path
    episode: Path
    duration: float = MEDIA_SECONDS


def make_media(folder: Path) -> MediaFiles:
    """One ffmpeg run (~1 s); a keyframe a second so that seeks land where asked."""
    movie = folder / "The.Matrix.1999.1080p.BluRay.x264.mkv"
    episode = folder / "Show.Name.S01E02.720p.WEB.mkv"
    subprocess.run(
        [
            "ffmpeg", "-nostdin", "-v", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc=duration={MEDIA_SECONDS:g}:size=160x120:rate=10",
            "-c:v", "libx264", "-g", "10", "-preset", "veryfast", "-an", str(movie),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    shutil.copyfile(movie, episode)
    return MediaFiles(movie=movie, episode=episode)


@pytest.fixture(name="media", scope="session")
def media_fixture(tmp_path_factory: pytest.TempPathFactory) -> MediaFiles:
    require_mpv()
    return make_media(tmp_path_factory.mktemp("media"))


@pytest.fixture(name="sock_dir")
def sock_dir_fixture() -> Iterator[Path]:
    """A short folder for sockets: AF_UNIX paths must stay under 108 bytes."""
    folder = Path(tempfile.mkdtemp(prefix="mpvt-", dir="/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- mpv --------------------------------------------------------------------------------------


class MpvCommandError(Exception):
    pass


class MpvControl:
    """A small synchronous JSON IPC client: the test's remote control, no threads."""

    def __init__(self, path: Path, timeout: float = START_TIMEOUT) -> None:
        self._sock = socket.socket(socket.AF_UNIX)
        self._sock.settimeout(timeout)
        self._sock.connect(str(path))
        self._buffer = b""
        self._ids = itertools.count(1)
        self.command("disable_event", "all")  # the control client reads replies only

    def close(self) -> None:
        self._sock.close()

    def send(self, *args: object) -> int:
        request_id = next(self._ids)
        line = json.dumps({"command": list(args), "request_id": request_id}) + "\n"
        self._sock.sendall(line.encode())
        return request_id

    def command(self, *args: object) -> object:
        request_id = self.send(*args)
        while True:
            reply = self._read()
            if reply.get("request_id") != request_id:
                continue
            if reply.get("error") != "success":
                raise MpvCommandError(f"{args}: {reply.get('error')}")
            return reply.get("data")

    def _read(self) -> dict[str, object]:
        while b"\n" not in self._buffer:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("mpv closed the socket")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        data = json.loads(line)
        assert isinstance(data, dict)
        return data

    def loadfile(self, path: Path | str, *, start: float | None = None) -> None:
        if start is None:
            self.command("loadfile", str(path))
        else:
            self.command("loadfile", str(path), "replace", f"start={start:g}")

    def wait_for(self, name: str, pred: Callable[[object], bool], timeout: float = 5.0) -> object:
        """Poll a property until `pred` holds (bounded): for setting a scene up before a test."""
        deadline = time.monotonic() + timeout
        while not pred(value := self.get(name)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"mpv {name} is still {value!r}")
            time.sleep(0.01)
        return value

    def get(self, name: str) -> object:
        """The property's value; None while mpv says it is unavailable."""
        try:
            return self.command("get_property", name)
        except MpvCommandError as err:
            if str(err).endswith("property unavailable"):
                return None
            raise

    def set(self, name: str, value: object) -> None:
        self.command("set_property", name, value)

    def pause(self) -> None:
        self.set("pause", True)

    def resume(self) -> None:
        self.set("pause", False)

    def seek(self, seconds: float) -> None:
        self.command("seek", seconds, "absolute")

    def stop(self) -> None:
        self.command("stop")

    def quit(self) -> None:
        self.send("quit")  # mpv may close before it answers


class MpvProcess:
    """A headless mpv listening on `socket_path`, with a control connection."""

    def __init__(self, socket_path: Path, *args: str, log_path: Path | None = None) -> None:
        self.socket_path = socket_path
        argv = [
            "mpv", "--no-config", "--idle=yes", "--vo=null", "--ao=null", "--really-quiet",
            f"--input-ipc-server={socket_path}", *args,
        ]  # fmt: skip
        log_file = open(log_path or os.devnull, "wb")  # noqa: SIM115 - closed below
        try:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file
            )
        finally:
            log_file.close()
        self.control = self._connect()

    def _connect(self) -> MpvControl:
        """Bounded wait for the socket: a stale file may sit there until mpv replaces it."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                return MpvControl(self.socket_path)
            except (FileNotFoundError, ConnectionRefusedError):
                if self.process.poll() is not None:
                    raise RuntimeError(f"mpv exited with {self.process.returncode}") from None
                if time.monotonic() > deadline:
                    self.kill()
                    raise
                time.sleep(0.01)

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no end-file, no goodbye; the socket file stays behind."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=START_TIMEOUT)

    def wait(self, timeout: float = START_TIMEOUT) -> int:
        return self.process.wait(timeout=timeout)

    def close(self) -> None:
        self.control.close()
        self.kill()


class MpvLauncher:
    """Starts mpv processes for one test and kills them all at teardown."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._processes: list[MpvProcess] = []
        self._names = itertools.count(1)

    def start(self, *args: str, socket_path: Path | None = None) -> MpvProcess:
        path = socket_path or self.folder / f"mpv{next(self._names)}.sock"
        mpv = MpvProcess(path, *args, log_path=self.folder / f"{path.name}.log")
        self._processes.append(mpv)
        return mpv

    async def astart(self, *args: str, socket_path: Path | None = None) -> MpvProcess:
        """`start` off the event loop, so an adapter under test keeps running meanwhile."""
        return await asyncio.to_thread(self.start, *args, socket_path=socket_path)

    def close(self) -> None:
        for mpv in self._processes:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                mpv.close()


@pytest.fixture(name="mpv_launcher")
def mpv_launcher_fixture(sock_dir: Path) -> Iterator[MpvLauncher]:
    require_mpv()
    launcher = MpvLauncher(sock_dir)
    try:
        yield launcher
    finally:
        launcher.close()


# --- following an adapter ---------------------------------------------------------------------


def summary(event: PlayerEvent) -> tuple[type, EndReason | None, str | None]:
    """An event's kind, end reason and played path: what a test compares sequences by."""
    reason = event.reason if isinstance(event, Ended) else None
    path = event.media.path if isinstance(event, Playing) else None
    return type(event), reason, path


class EventRecorder:
    """The `emit` given to an adapter: keeps every event, lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[PlayerEvent] = []
        self._changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def __call__(self, event: PlayerEvent) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait_for_event(
        self,
        pred: Callable[[PlayerEvent], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 - the test's bound, not a cancellation scope
        *,
        after: int = 0,
    ) -> PlayerEvent:
        """The first event from index `after` on satisfying `pred`, waiting at most `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for event in self.events[after:]:
                        if pred(event):
                            return event
                    self._changed.clear()
                    await self._wait_change()
        except TimeoutError:
            seen = "\n  ".join(map(repr, self.events[after:])) or "nothing"
            pytest.fail(f"no matching event within {timeout} s; saw:\n  {seen}")

    async def wait_for(
        self,
        cls: type[E],
        pred: Callable[[E], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - the test's bound, not a cancellation scope
        *,
        after: int = 0,
        source: str | None = None,
    ) -> E:
        """The first `cls` event from index `after` on (of `source`, satisfying `pred`)."""

        def match(event: PlayerEvent) -> bool:
            return (
                isinstance(event, cls)
                and (source is None or event.source == source)
                and (pred is None or pred(event))
            )

        found = await self.wait_for_event(match, timeout, after=after)
        assert isinstance(found, cls)
        return found

    def of(self, cls: type[E]) -> list[E]:
        """Every `cls` event so far, in order."""
        return [e for e in self.events if isinstance(e, cls)]

    async def _wait_change(self) -> None:
        waiter = asyncio.ensure_future(self._changed.wait())
        try:
            pending: set[asyncio.Future[Any]] = {waiter}
            if self.task is not None:
                pending.add(self.task)
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if self.task is not None and self.task.done():
            self.task.result()  # the adapter died: raise its error here
            pytest.fail("the adapter's run() returned")


async def wait_until(
    cond: Callable[[], bool],
    timeout: float = 5.0,  # noqa: ASYNC109 - the test's bound, not a cancellation scope
    what: str = "",
) -> None:
    """Bounded wait for a condition nothing signals (e.g. `connections()`)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"not true within {timeout} s: {what or cond}")
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def running(player: Player) -> AsyncIterator[EventRecorder]:
    """Run `player` in the test's loop; cancel it (and surface its errors) at the end."""
    recorder = EventRecorder()
    task = asyncio.create_task(player.run(recorder))
    recorder.task = task
    try:
        yield recorder
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
