"""A real Kodi for tests: Kodi 20 under Xvfb, with a fresh home and its JSON-RPC on a free port.

Debian's Kodi has no headless windowing, so it runs on an Xvfb display (one per session, shared
by every Kodi). Each Kodi gets its own `HOME` with the settings that keep it quiet and light
(null ALSA sink, no stream of silence, no zeroconf) and an `advancedsettings.xml` choosing the
TCP port. Fixtures are defined as ``<name>_fixture`` with ``name=<name>``, as in `realplayers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.realplayers import MediaFiles, make_media, require_binaries

KODI_BIN = Path("/usr/lib/x86_64-linux-gnu/kodi/kodi.bin")
KODI_MISSING = "kodi not installed: apt-get install kodi xvfb"
START_TIMEOUT = 30.0
"""Kodi is ready in about a second; a loaded CI machine gets more."""
CALL_TIMEOUT = 5.0

_GUI_SETTINGS = {
    "audiooutput.streamsilence": "0",  # else ~30 % of a core while idle
    "services.zeroconf": "false",
    "general.addonupdates": "2",  # never
    "addons.updatemode": "2",
}


def require_kodi() -> None:
    """Skip without Kodi or Xvfb on a developer's machine; fail in CI, where they must be."""
    require_binaries(str(KODI_BIN), "Xvfb", message=KODI_MISSING)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


# --- Xvfb ------------------------------------------------------------------------------------


class Xvfb:
    """A virtual X display; `-displayfd` makes Xvfb pick a free display and say which."""

    def __init__(self, log_path: Path) -> None:
        read_end, write_end = os.pipe()
        try:
            with open(log_path, "wb") as log:
                self.process = subprocess.Popen(
                    ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "640x480x24",
                     "-nolisten", "tcp", "-noreset"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(write_end,),
                )  # fmt: skip
            os.close(write_end)
            self.display = f":{self._read_display(read_end, log_path)}"
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(write_end)
            self.close()
            raise
        finally:
            os.close(read_end)

    def _read_display(self, fd: int, log_path: Path) -> int:
        deadline = time.monotonic() + START_TIMEOUT
        said = b""
        while not said.endswith(b"\n"):
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(fd, 64) if ready else b""
            if not chunk:
                raise RuntimeError(f"Xvfb did not start:\n{_tail(log_path)}")
            said += chunk
        return int(said)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


# --- the remote control ------------------------------------------------------------------------


class KodiCallError(Exception):
    pass


class KodiControl:
    """A small synchronous JSON-RPC client: the test's remote control.

    Notifications Kodi sends it are skipped. The `a…` methods run calls in a thread, so that
    an adapter under test keeps running on the loop meanwhile.
    """

    def __init__(self, port: int, timeout: float = CALL_TIMEOUT) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._buffer = ""
        self._decoder = json.JSONDecoder()
        self._next_id = 1
        self._lock = threading.Lock()

    def close(self) -> None:
        self._sock.close()

    def send(self, method: str, **params: object) -> int:
        request_id = self._next_id
        self._next_id += 1
        request: dict[str, object] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params:
            request["params"] = params
        self._sock.sendall(json.dumps(request).encode())
        return request_id

    def call(self, method: str, **params: object) -> Any:
        with self._lock:
            request_id = self.send(method, **params)
            while True:
                message = self._read()
                if message.get("id") != request_id:
                    continue  # a notification
                if "error" in message:
                    raise KodiCallError(f"{method}: {message['error']}")
                return message.get("result")

    async def acall(self, method: str, **params: object) -> Any:
        return await asyncio.to_thread(self.call, method, **params)

    def _read(self) -> dict[str, Any]:
        while True:
            self._buffer = self._buffer.lstrip()
            if self._buffer:
                try:
                    message, end = self._decoder.raw_decode(self._buffer)
                except json.JSONDecodeError:
                    pass  # cut by the read
                else:
                    self._buffer = self._buffer[end:]
                    assert isinstance(message, dict)
                    return message
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("Kodi closed the connection")
            self._buffer += chunk.decode()

    # --- actions -----------------------------------------------------------------------------

    async def open(self, path: Path | str) -> None:
        await self.acall("Player.Open", item={"file": str(path)})

    async def open_episode(self, episodeid: int) -> None:
        await self.acall("Player.Open", item={"episodeid": episodeid})

    async def pause(self) -> None:
        await self.acall("Player.PlayPause", playerid=1, play=False)

    async def resume(self) -> None:
        await self.acall("Player.PlayPause", playerid=1, play=True)

    async def seek(self, seconds: float) -> None:
        whole = int(seconds)
        value = {
            "hours": whole // 3600,
            "minutes": whole // 60 % 60,
            "seconds": whole % 60,
            "milliseconds": int((seconds - whole) * 1000),
        }
        await self.acall("Player.Seek", playerid=1, value={"time": value})

    async def stop(self) -> None:
        await self.acall("Player.Stop", playerid=1)

    def quit(self) -> None:
        """Ask Kodi to quit; it may close the connection before it answers."""
        self.send("Application.Quit")

    def properties(self) -> dict[str, Any]:
        """The video player's time, totaltime and speed; {} while nothing plays."""
        if not any(p.get("type") == "video" for p in self.call("Player.GetActivePlayers")):
            return {}
        result = self.call(
            "Player.GetProperties", playerid=1, properties=["time", "totaltime", "speed"]
        )
        assert isinstance(result, dict)
        return result

    async def wait_for(
        self,
        pred: Callable[[dict[str, Any]], bool],
        timeout: float = 10.0,  # noqa: ASYNC109 - the test's bound, not a cancellation scope
        what: str = "",
    ) -> dict[str, Any]:
        """Poll the player's properties until `pred` holds (bounded): for setting a scene up."""
        props: dict[str, Any] = {}
        try:
            async with asyncio.timeout(timeout):
                while True:
                    props = await asyncio.to_thread(self.properties)
                    if pred(props):
                        return props
                    await asyncio.sleep(0.05)  # nothing signals Kodi's state: poll it
        except TimeoutError:
            pytest.fail(f"Kodi not {what or pred} within {timeout} s: {props}")

    async def wait_playing(self, at_least: float = 0.0) -> dict[str, Any]:
        """Playing (speed 1, duration known) at or beyond `at_least` seconds."""

        def playing(props: dict[str, Any]) -> bool:
            return (
                props.get("speed") == 1
                and seconds(props.get("totaltime")) > 0
                and seconds(props.get("time")) >= at_least
            )

        return await self.wait_for(playing, what=f"playing at {at_least} s or later")

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Stop whatever plays and wait (bounded) until nothing does."""
        deadline = time.monotonic() + timeout
        while players := self.call("Player.GetActivePlayers"):
            for player in players:
                self.call("Player.Stop", playerid=player["playerid"])
            if time.monotonic() > deadline:
                raise TimeoutError(f"Kodi still plays: {players}")
            time.sleep(0.05)


def seconds(value: object) -> float:
    """Kodi's `{hours, minutes, seconds, milliseconds}` in seconds; 0 for anything else."""
    if not isinstance(value, dict):
        return 0.0
    return float(
        value.get("hours", 0) * 3600
        + value.get("minutes", 0) * 60
        + value.get("seconds", 0)
        + value.get("milliseconds", 0) / 1000
    )


# --- Kodi --------------------------------------------------------------------------------------


def _prepare_home(home: Path, port: int) -> None:
    userdata = home / ".kodi" / "userdata"
    userdata.mkdir(parents=True, exist_ok=True)
    (home / ".asoundrc").write_text("pcm.!default { type null }\nctl.!default { type null }\n")
    (userdata / "advancedsettings.xml").write_text(
        '<advancedsettings version="1.0">\n'
        f"  <jsonrpc><tcpport>{port}</tcpport></jsonrpc>\n"
        "</advancedsettings>\n"
    )
    gui = userdata / "guisettings.xml"
    if not gui.exists():  # Kodi rewrites it at exit, keeping these
        settings = "".join(f'  <setting id="{k}">{v}</setting>\n' for k, v in _GUI_SETTINGS.items())
        gui.write_text(f'<settings version="2">\n{settings}</settings>\n')


_PROFILE = """  <profile>
    <id>{id}</id>
    <name>{name}</name>
    <directory pathversion="1">{directory}</directory>
    <hasdatabases>true</hasdatabases>
    <canwritedatabases>true</canwritedatabases>
    <hassources>true</hassources>
    <canwritesources>true</canwritesources>
    <lockmode>0</lockmode>
  </profile>
"""


def add_profile(home: Path, port: int, name: str) -> None:
    """Give the Kodi of `home` (not started yet) a second profile, `name`, besides the master.

    A profile has its own advanced settings (the JSON-RPC port) and GUI settings: copied from
    the master's, so that Kodi answers on `port` in either profile.
    """
    _prepare_home(home, port)
    userdata = home / ".kodi" / "userdata"
    folder = userdata / "profiles" / name
    folder.mkdir(parents=True, exist_ok=True)
    for settings in ("advancedsettings.xml", "guisettings.xml"):
        shutil.copy(userdata / settings, folder / settings)
    master = _PROFILE.format(id=0, name="Master user", directory="special://masterprofile/")
    other = _PROFILE.format(id=1, name=name, directory=f"profiles/{name}/")
    (userdata / "profiles.xml").write_text(
        "<profiles>\n  <lastloaded>0</lastloaded>\n  <useloginscreen>false</useloginscreen>\n"
        f"  <autologin>-1</autologin>\n  <nextIdProfile>2</nextIdProfile>\n{master}{other}"
        "</profiles>\n"
    )


class KodiProcess:
    """A Kodi on `display`, answering JSON-RPC on 127.0.0.1:`port`, with a control connection."""

    def __init__(self, display: str, home: Path, port: int) -> None:
        self.home = home
        self.port = port
        _prepare_home(home, port)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PULSE", "WAYLAND"))}
        env.update(
            HOME=str(home),
            DISPLAY=display,
            LP_NUM_THREADS="0",  # Mesa's llvmpipe: no render threads on every core
            KODI_AE_SINK="ALSA",  # never a desktop's sound server: the null ALSA device
        )
        # One core for Kodi, so that it cannot take the test's.
        taskset = ["taskset", "-c", str(max(os.sched_getaffinity(0)))]
        argv = [*(taskset if shutil.which("taskset") else []), str(KODI_BIN)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*argv, "--standalone", "--windowing=x11"],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        try:
            self.control = self._connect()
        except BaseException:
            self.kill()
            raise

    @property
    def log_path(self) -> Path:
        return self.home / "kodi.out"

    @property
    def database(self) -> Path:
        return self.home / ".kodi" / "userdata" / "Database" / "MyVideos121.db"

    def _connect(self) -> KodiControl:
        """Bounded wait until JSON-RPC answers a ping."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"Kodi exited with {self.process.returncode}:\n{_tail(self.log_path)}"
                )
            try:
                control = KodiControl(self.port, timeout=1.0)
            except OSError:
                control = None
            if control is not None:
                try:
                    if control.call("JSONRPC.Ping") == "pong":
                        control._sock.settimeout(CALL_TIMEOUT)
                        return control
                except OSError:
                    pass
                control.close()
            if time.monotonic() > deadline:
                raise TimeoutError(f"Kodi not answering on {self.port}:\n{_tail(self.log_path)}")
            time.sleep(0.05)

    def load_profile(self, name: str) -> None:
        """`Profiles.LoadProfile`: Kodi takes its network services down (every JSON-RPC
        connection drops) and up again in that profile; the control connects again."""
        self.control.call("Profiles.LoadProfile", profile=name)
        deadline = time.monotonic() + START_TIMEOUT
        with contextlib.suppress(ConnectionError, OSError):
            while time.monotonic() < deadline:
                self.control._read()  # notifications, until the connection drops
        self.control.close()
        self.control = self._connect()

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no OnStop, no OnQuit; the connection just ends."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def wait(self, timeout: float = 10.0) -> int:
        return self.process.wait(timeout=timeout)

    def close(self) -> None:
        """Terminate (Kodi quits in about a second), bounded; then kill."""
        with contextlib.suppress(OSError):
            self.control.close()
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        self.kill()


class KodiLauncher:
    """Starts Kodis on one display and closes them all at teardown."""

    def __init__(self, display: str, folder: Path) -> None:
        self.display = display
        self.folder = folder
        self._kodis: list[KodiProcess] = []

    def start(self, port: int | None = None, home: Path | None = None) -> KodiProcess:
        """A Kodi on `port` (a free one by default); the same `home` restarts the same Kodi."""
        if home is None:
            home = self.folder / f"kodi{len(self._kodis) + 1}"
        kodi = KodiProcess(self.display, home, port if port is not None else free_port())
        self._kodis.append(kodi)
        return kodi

    async def astart(self, port: int | None = None, home: Path | None = None) -> KodiProcess:
        """`start` off the event loop, so that an adapter under test keeps running meanwhile."""
        return await asyncio.to_thread(self.start, port, home)

    def close(self) -> None:
        for kodi in self._kodis:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                kodi.close()


# --- the library -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Library:
    """One episode in Kodi's library, with ids from .nfo files."""

    episode_id: int
    episode_path: Path
    episode_ids: dict[str, str]
    show_ids: dict[str, str]
    show_title: str = "Breaking Bad"
    season: int = 1
    episode: int = 2


def _uniqueids(ids: dict[str, str]) -> str:
    """`<uniqueid>` elements, the first one the default."""
    lines = []
    for i, (kind, value) in enumerate(ids.items()):
        default = ' default="true"' if i == 0 else ""
        lines.append(f'  <uniqueid type="{kind}"{default}>{value}</uniqueid>\n')
    return "".join(lines)


def add_library(kodi: KodiProcess, media: MediaFiles, folder: Path) -> Library:
    """A TV show folder with .nfo files, scanned with the built-in `metadata.local` scraper.

    The content path is registered by a row in the `path` table (what "Set content" does in
    the GUI), then `VideoLibrary.Scan`: no network, no scraper add-on.
    """
    show_ids = {"tvdb": "81189", "imdb": "tt0903747", "tmdb": "1396"}
    episode_ids = {"tvdb": "349232", "imdb": "tt1054724", "tmdb": "62086"}
    show = folder / "tv" / "Breaking Bad"
    show.mkdir(parents=True)
    episode = show / "Breaking.Bad.S01E02.720p.WEB.mkv"
    shutil.copyfile(media.episode, episode)
    (show / "tvshow.nfo").write_text(
        "<tvshow>\n  <title>Breaking Bad</title>\n  <premiered>2008-01-20</premiered>\n"
        f"{_uniqueids(show_ids)}</tvshow>\n"
    )
    episode.with_suffix(".nfo").write_text(
        "<episodedetails>\n  <title>Cat's in the Bag...</title>\n  <season>1</season>\n"
        f"  <episode>2</episode>\n  <aired>2008-01-27</aired>\n{_uniqueids(episode_ids)}"
        "</episodedetails>\n"
    )
    deadline = time.monotonic() + START_TIMEOUT
    while not kodi.database.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {kodi.database}")
        time.sleep(0.05)
    with contextlib.closing(sqlite3.connect(kodi.database, timeout=10)) as db, db:
        db.execute(
            "INSERT INTO path (strPath, strContent, strScraper, scanRecursive, useFolderNames,"
            " strSettings, noUpdate, exclude, allAudio) VALUES (?, 'tvshows', 'metadata.local',"
            " 0, 0, '', 0, 0, 0)",
            (f"{show.parent}/",),
        )
    kodi.control.call("VideoLibrary.Scan")
    while True:
        found = kodi.control.call("VideoLibrary.GetEpisodes", properties=["file"])
        for item in found.get("episodes", []):
            if item.get("file") == str(episode):
                return Library(item["episodeid"], episode, episode_ids, show_ids)
        if time.monotonic() > deadline:
            raise TimeoutError(f"the scan did not find {episode}")
        time.sleep(0.05)


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(name="kodi_media", scope="session")
def kodi_media_fixture(tmp_path_factory: pytest.TempPathFactory) -> MediaFiles:
    require_kodi()
    require_binaries("ffmpeg", message="ffmpeg not installed: apt-get install ffmpeg")
    return make_media(tmp_path_factory.mktemp("kodi-media"))


@pytest.fixture(name="xvfb", scope="session")
def xvfb_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Xvfb]:
    require_kodi()
    display = Xvfb(tmp_path_factory.mktemp("xvfb") / "xvfb.log")
    try:
        yield display
    finally:
        display.close()


@pytest.fixture(name="shared_kodi", scope="session")
def shared_kodi_fixture(
    xvfb: Xvfb, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KodiProcess]:
    """One Kodi for every test that neither kills nor restarts it."""
    launcher = KodiLauncher(xvfb.display, tmp_path_factory.mktemp("kodi"))
    try:
        yield launcher.start()
    finally:
        launcher.close()


@pytest.fixture(name="kodi")
def kodi_fixture(shared_kodi: KodiProcess) -> KodiProcess:
    """The shared Kodi, idle: whatever an earlier test left playing is stopped."""
    shared_kodi.control.wait_idle()
    return shared_kodi


@pytest.fixture(name="kodi_library", scope="session")
def kodi_library_fixture(
    shared_kodi: KodiProcess, kodi_media: MediaFiles, tmp_path_factory: pytest.TempPathFactory
) -> Library:
    return add_library(shared_kodi, kodi_media, tmp_path_factory.mktemp("library"))


@pytest.fixture(name="kodi_launcher")
def kodi_launcher_fixture(xvfb: Xvfb, tmp_path: Path) -> Iterator[KodiLauncher]:
    """Kodis of a test's own, for tests that quit, kill or start Kodi."""
    launcher = KodiLauncher(xvfb.display, tmp_path)
    try:
        yield launcher
    finally:
        launcher.close()
