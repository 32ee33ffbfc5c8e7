"""Real MPRIS players for tests: a private session bus, VLC and mpv with mpv-mpris on it.

The bus is a `dbus-daemon` of the test's own, listening in a world-accessible folder and
letting any user connect: VLC refuses to run as root (CI is root), so there it runs as the
unprivileged user `trakt-test` (created when missing), on the same bus as the test.

Fixtures are defined as ``<name>_fixture`` with ``name=<name>``, as in `tests.realplayers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from tests.realplayers import MediaFiles, MpvLauncher, require_binaries, require_mpv

DBUS_MISSING = "dbus-daemon not installed: apt-get install dbus-daemon"
VLC_MISSING = "VLC not installed: apt-get install vlc-bin vlc-plugin-base"
MPV_MPRIS_MISSING = "mpv-mpris not installed: apt-get install mpv-mpris"
MPV_MPRIS_PLUGINS = ("/usr/lib/mpv-mpris/mpris.so", "/etc/mpv/scripts/mpris.so")
VLC_DBUS_PLUGIN = "control/libdbus_plugin.so"
TEST_USER = "trakt-test"
START_TIMEOUT = 10.0
PREFIX = "org.mpris.MediaPlayer2."
PLAYER = "org.mpris.MediaPlayer2.Player"
PATH = "/org/mpris/MediaPlayer2"

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def _skip_or_fail(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_vlc() -> None:
    require_binaries("vlc", message=VLC_MISSING)
    found = any(
        (Path(root) / "vlc/plugins" / VLC_DBUS_PLUGIN).exists()
        for root in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib")
    )
    if not found and not list(Path("/usr/lib").glob(f"*/vlc/plugins/{VLC_DBUS_PLUGIN}")):
        _skip_or_fail(VLC_MISSING)


def mpv_mpris_plugin() -> str:
    require_mpv()
    for path in MPV_MPRIS_PLUGINS:
        if os.path.exists(path):
            return path
    _skip_or_fail(MPV_MPRIS_MISSING)
    raise AssertionError("unreachable")


# --- the bus ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionBus:
    address: str
    folder: Path
    """World-readable: media and the VLC user's home live here."""
    process: subprocess.Popen[bytes]


def start_bus() -> SessionBus:
    require_binaries("dbus-daemon", message=DBUS_MISSING)
    folder = Path(tempfile.mkdtemp(prefix="tsbus-", dir="/tmp"))
    folder.chmod(0o755)
    config = folder / "bus.conf"
    config.write_text(BUS_CONFIG.format(socket=folder / "bus"))
    return _run_bus(folder)


def restart_bus(bus: SessionBus) -> SessionBus:
    """A new bus daemon at the same address, after the old one died."""
    if bus.process.stdout is not None:
        bus.process.stdout.close()
    return _run_bus(bus.folder)


def _run_bus(folder: Path) -> SessionBus:
    config = folder / "bus.conf"
    process = subprocess.Popen(
        ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    line = process.stdout.readline().decode().strip()  # bounded: the daemon prints or dies
    if not line.startswith("unix:"):
        process.kill()
        raise RuntimeError(f"dbus-daemon did not start (exit {process.wait()})")
    return SessionBus(line, folder, process)


def stop_bus(bus: SessionBus) -> None:
    bus.process.terminate()
    try:
        bus.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        bus.process.kill()
        bus.process.wait()
    if bus.process.stdout is not None:
        bus.process.stdout.close()
    shutil.rmtree(bus.folder, ignore_errors=True)


@pytest.fixture(name="session_bus")
def session_bus_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[SessionBus]:
    """A private session bus; players started by the test find it in the environment."""
    bus = start_bus()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus.address)
    try:
        yield bus
    finally:
        stop_bus(bus)


# --- the test's own client --------------------------------------------------------------------


class BusClient:
    """The test's remote control: finds players and calls their MPRIS methods."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus

    async def call(
        self, dest: str, path: str, iface: str, member: str, sig: str = "", *body: Any
    ) -> list[Any]:
        reply = await asyncio.wait_for(
            self.bus.call(
                Message(
                    destination=dest,
                    path=path,
                    interface=iface,
                    member=member,
                    signature=sig,
                    body=list(body),
                )
            ),
            START_TIMEOUT,
        )
        assert reply is not None
        if reply.message_type is MessageType.ERROR:
            raise RuntimeError(f"{member}: {reply.error_name} {reply.body}")
        return list(reply.body)

    async def dbus(self, member: str, sig: str = "", *body: Any) -> list[Any]:
        return await self.call(
            "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", member, sig,
            *body,
        )  # fmt: skip

    async def players(self) -> dict[str, int]:
        """MPRIS bus name -> the pid of its owner."""
        (names,) = await self.dbus("ListNames")
        out: dict[str, int] = {}
        for name in names:
            if name.startswith(PREFIX):
                with contextlib.suppress(RuntimeError):
                    (pid,) = await self.dbus("GetConnectionUnixProcessID", "s", name)
                    out[name] = pid
        return out

    async def name_of(self, pid: int, timeout: float = START_TIMEOUT) -> str:  # noqa: ASYNC109
        """The shortest MPRIS name process `pid` owns, once it owns one (bounded wait)."""
        deadline = time.monotonic() + timeout
        while True:
            names = [n for n, p in (await self.players()).items() if p == pid]
            if names:
                return min(names, key=len)
            if time.monotonic() > deadline:
                pytest.fail(f"process {pid} owns no MPRIS name within {timeout} s")
            await asyncio.sleep(0.05)

    async def player(self, name: str, member: str, sig: str = "", *body: Any) -> list[Any]:
        return await self.call(name, PATH, PLAYER, member, sig, *body)

    async def get(self, name: str, prop: str) -> Any:
        (value,) = await self.call(
            name, PATH, "org.freedesktop.DBus.Properties", "Get", "ss", PLAYER, prop
        )
        return value.value if isinstance(value, Variant) else value

    async def wait_status(self, name: str, status: str, timeout: float = START_TIMEOUT) -> None:  # noqa: ASYNC109
        """Poll PlaybackStatus until it is `status` (bounded): for setting a scene up."""
        deadline = time.monotonic() + timeout
        while (now := await self.get(name, "PlaybackStatus")) != status:
            if time.monotonic() > deadline:
                pytest.fail(f"{name} is still {now}, not {status}")
            await asyncio.sleep(0.05)

    async def wait_position(
        self,
        name: str,
        at_least: float,
        timeout: float = START_TIMEOUT,  # noqa: ASYNC109 - the scene's bound
    ) -> None:
        """Poll Position until it is `at_least` seconds (bounded): a seek lands after its call."""
        deadline = time.monotonic() + timeout
        while (now := await self.get(name, "Position") / 1_000_000) < at_least:
            if time.monotonic() > deadline:
                pytest.fail(f"{name} is at {now:.1f} s, not {at_least} s yet")
            await asyncio.sleep(0.05)

    async def set_position(self, name: str, seconds: float) -> None:
        metadata = await self.get(name, "Metadata")
        trackid = metadata["mpris:trackid"].value
        await self.player(name, "SetPosition", "ox", trackid, round(seconds * 1_000_000))


@contextlib.asynccontextmanager
async def bus_client(bus: SessionBus) -> AsyncIterator[BusClient]:
    raw = await MessageBus(bus_address=bus.address).connect()
    try:
        yield BusClient(raw)
    finally:
        raw.disconnect()


# --- VLC --------------------------------------------------------------------------------------


def _test_user() -> pwd.struct_passwd:
    """The unprivileged user VLC runs as under root, created once (no home, no shell)."""
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        pass
    if shutil.which("useradd") is None:
        _skip_or_fail("VLC refuses root and useradd is missing to create a user for it")
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", TEST_USER],
        check=False,
        capture_output=True,
        timeout=30,
    )
    return pwd.getpwnam(TEST_USER)


class Vlc:
    """One headless VLC with its D-Bus control interface, as an unprivileged user under root."""

    def __init__(self, bus: SessionBus, *files: Path, log_name: str = "vlc.log") -> None:
        home = bus.folder / "vlc-home"
        home.mkdir(exist_ok=True)
        kwargs: dict[str, Any] = {}
        if os.geteuid() == 0:
            user = _test_user()
            os.chown(home, user.pw_uid, user.pw_gid)
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        env = {
            "HOME": str(home),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "DBUS_SESSION_BUS_ADDRESS": bus.address,
        }
        argv = [
            "vlc", "-I", "dbus", "--vout", "dummy", "--aout", "dummy", "--no-video-title-show",
            "--no-one-instance", "--no-loop", "--no-repeat", "--no-random", "--no-media-library",
            *(str(f) for f in files),
        ]  # fmt: skip
        with open(bus.folder / log_name, "ab") as log:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                cwd=home,
                **kwargs,
            )
        self.name = ""

    @property
    def pid(self) -> int:
        return self.process.pid

    async def ready(self, client: BusClient) -> str:
        """Its MPRIS name, once it owns one."""
        self.name = await client.name_of(self.pid)
        return self.name

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=START_TIMEOUT)


class VlcLauncher:
    def __init__(self, bus: SessionBus) -> None:
        self.bus = bus
        self._vlcs: list[Vlc] = []

    def media(self, media: MediaFiles) -> MediaFiles:
        """Copies of the media where VLC's user can read them."""
        folder = self.bus.folder / "media"
        if not folder.exists():
            folder.mkdir()
            folder.chmod(0o755)
            for src in (media.movie, media.episode):
                shutil.copyfile(src, folder / src.name)
                (folder / src.name).chmod(0o644)
        return MediaFiles(folder / media.movie.name, folder / media.episode.name, media.duration)

    def start(self, *files: Path) -> Vlc:
        vlc = Vlc(self.bus, *files, log_name=f"vlc{len(self._vlcs)}.log")
        self._vlcs.append(vlc)
        return vlc

    def close(self) -> None:
        for vlc in self._vlcs:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                vlc.kill()


@pytest.fixture(name="vlc_launcher")
def vlc_launcher_fixture(session_bus: SessionBus) -> Iterator[VlcLauncher]:
    require_vlc()
    launcher = VlcLauncher(session_bus)
    try:
        yield launcher
    finally:
        launcher.close()


@pytest.fixture(name="mpris_mpv")
def mpris_mpv_fixture(session_bus: SessionBus, mpv_launcher: MpvLauncher) -> str:
    """`--script=` argument loading mpv-mpris into mpvs the launcher starts on the test bus."""
    del session_bus, mpv_launcher  # the bus is in the environment: mpv finds it there
    return f"--script={mpv_mpris_plugin()}"
