"""The control socket: the commands' private door to their own daemon.

`status`, `queue`, `queue retry|drop`, `reload` and `logout` reach the running daemon over an
AF_UNIX socket in a folder only its user can enter (0700, owned by that user), and both ends
check the other's uid with SO_PEERCRED: no other local user can read what you watch or drive
your daemon, and two users' daemons never answer for each other. The webhook listener is a
separate door (server.py).

One request per connection: a JSON object on one line, answered by one JSON object on one line:
`{"ok": true, "result": ...}` or `{"ok": false, "error": "..."}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trakt_scrobbled.paths import APP_NAME, Paths

log = logging.getLogger(__name__)

SOCKET_NAME = "control.sock"
DIR_MODE = 0o700
SOCKET_MODE = 0o600
MAX_REQUEST = 64 * 1024
"""Bytes: a request is a command and an id; anything longer is not one of ours."""
MAX_REPLY = 16 * 1024 * 1024
REQUEST_TIMEOUT = 5.0
"""Seconds a client may take to send its request before it is hung up on."""
DEFAULT_WAIT = 10.0
"""Seconds the commands wait for an answer: the daemon answers from memory, a reload from disk."""
_SUN_PATH_MAX = 107
_PEERCRED = struct.Struct("3i")

Handler = Callable[[str, Mapping[str, Any]], Awaitable[Any]]
"""Runs one command with its arguments; raises `CommandFailed` for an answer that is an error."""


class ControlError(Exception):
    """The control socket cannot be used; the message says why and what to do."""


class NotRunning(ControlError):
    """No daemon listens on the socket."""


class CommandFailed(ControlError):
    """The daemon answered, with an error (e.g. no such row)."""


@dataclass(frozen=True, slots=True)
class ControlPath:
    """Where the socket lives, and whether we own the folder (else systemd made it)."""

    folder: Path
    ours: bool

    @property
    def socket(self) -> Path:
        return self.folder / SOCKET_NAME


def control_path(env: Mapping[str, str], paths: Paths) -> ControlPath:
    """`$RUNTIME_DIRECTORY` (systemd's), else `$XDG_RUNTIME_DIR/trakt-scrobbled`, else the
    state folder (already private to the user) when no runtime folder is set."""
    runtime = next((p for p in env.get("RUNTIME_DIRECTORY", "").split(":") if p), "")
    if runtime:
        return ControlPath(Path(runtime), ours=False)
    xdg = env.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isabs(xdg):
        return ControlPath(Path(xdg) / APP_NAME, ours=True)
    return ControlPath(paths.state_dir, ours=True)


def check_folder(folder: Path) -> None:
    """Refuse a folder another user owns or others may enter: its socket could be anyone's."""
    try:
        st = folder.lstat()
    except FileNotFoundError:
        raise
    except OSError as err:
        raise ControlError(f"cannot use {folder}: {err.strerror}") from err
    if not stat.S_ISDIR(st.st_mode):
        raise ControlError(f"{folder} is not a folder (a link or a file?): remove it")
    if st.st_uid != os.getuid():
        raise ControlError(f"{folder} belongs to another user (uid {st.st_uid}): refusing it")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise ControlError(
            f"{folder} may be entered by other users (mode {mode:o}): run `chmod 700 {folder}`"
        )


def make_folder(where: ControlPath) -> None:
    """Create our folder 0700 (its parent must exist), then check whatever is there."""
    if where.ours:
        try:
            where.folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass
        except FileNotFoundError as err:
            raise ControlError(f"cannot create {where.folder}: its parent does not exist") from err
        except OSError as err:
            raise ControlError(f"cannot create {where.folder}: {err.strerror}") from err
        else:
            where.folder.chmod(DIR_MODE)  # mkdir's mode is filtered by the umask
    try:
        check_folder(where.folder)
    except FileNotFoundError as err:
        raise ControlError(f"{where.folder} does not exist") from err


@contextlib.contextmanager
def _addressable(path: Path) -> Iterator[str]:
    """A name for `path` that fits in sun_path (107 bytes): deep folders go through the
    folder's descriptor in /proc, which bind and connect resolve like any path."""
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a connected AF_UNIX socket."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    _pid, uid, _gid = _PEERCRED.unpack(raw)
    return int(uid)


# --- the daemon's side ------------------------------------------------------------------------


class ControlServer:
    """Serves the control socket for the daemon; `handler` runs the commands."""

    def __init__(self, where: ControlPath, handler: Handler) -> None:
        self.where = where
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._inode: tuple[int, int] | None = None
        self._refused_once = False

    async def start(self) -> None:
        """Bind the socket, replacing a stale one; raises `ControlError` when another daemon
        of this user answers there or the folder is not private."""
        make_folder(self.where)
        path = self.where.socket
        if path.exists() or path.is_symlink():
            if _answers(path):
                raise ControlError(
                    f"another trakt-scrobbled answers on {path} "
                    "(a second daemon with other state folders?)"
                )
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with _addressable(path) as name:
                sock.bind(name)
            os.chmod(path, SOCKET_MODE)
            sock.listen(16)
            sock.setblocking(False)
            st = path.stat()
            self._inode = (st.st_dev, st.st_ino)
            self._server = await asyncio.start_unix_server(
                self._serve, sock=sock, limit=MAX_REQUEST
            )
        except OSError as err:
            sock.close()
            raise ControlError(f"cannot listen on {path}: {err.strerror}") from err

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        # Remove the socket only if it is still ours (a newer daemon may have replaced it).
        with contextlib.suppress(OSError):
            st = self.where.socket.stat()
            if (st.st_dev, st.st_ino) == self._inode:
                self.where.socket.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            uid = peer_uid(sock)
            if uid != os.getuid():
                if not self._refused_once:
                    log.warning("control: refused a client of another user (uid %d)", uid)
                    self._refused_once = True
                await _reply(writer, {"ok": False, "error": "refused: not this daemon's user"})
                return
            try:
                line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT)
            except (TimeoutError, ValueError, asyncio.LimitOverrunError):
                await _reply(writer, {"ok": False, "error": "no request, or one too long"})
                return
            answer = await self._answer(line)
            await _reply(writer, answer)
        except (ConnectionError, OSError) as err:
            log.debug("control: client went away (%s)", err)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "the request is not JSON"}
        if not isinstance(request, dict) or not isinstance(request.get("command"), str):
            return {"ok": False, "error": "the request names no command"}
        command = request["command"]
        args = {k: v for k, v in request.items() if k != "command"}
        try:
            result = await self._handler(command, args)
        except CommandFailed as err:
            return {"ok": False, "error": str(err)}
        except Exception:
            log.exception("control: %s failed", command)
            return {"ok": False, "error": f"{command} failed in the daemon; see its log"}
        return {"ok": True, "result": result}


async def _reply(writer: asyncio.StreamWriter, answer: Mapping[str, Any]) -> None:
    writer.write(json.dumps(answer).encode() + b"\n")
    await writer.drain()


def _answers(path: Path) -> bool:
    """Whether a live process accepts connections on the socket at `path`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            with _addressable(path) as name:
                sock.connect(name)
        except OSError:
            return False
        return True


# --- the commands' side -----------------------------------------------------------------------


def request(
    where: ControlPath,
    command: str,
    args: Mapping[str, Any] | None = None,
    *,
    wait: float = DEFAULT_WAIT,
) -> Any:
    """Run `command` in the daemon; its result, or `NotRunning` / `CommandFailed` /
    `ControlError`. Blocking: the commands are one-shot processes."""
    path = where.socket
    try:
        check_folder(where.folder)
    except FileNotFoundError as err:
        raise NotRunning("trakt-scrobbled is not running") from err
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(wait)
        try:
            with _addressable(path) as name:
                sock.connect(name)
        except (FileNotFoundError, ConnectionRefusedError) as err:
            raise NotRunning("trakt-scrobbled is not running") from err
        except TimeoutError as err:
            raise ControlError(_stuck(wait)) from err
        except OSError as err:
            raise ControlError(f"cannot reach the daemon at {path}: {err.strerror}") from err
        uid = peer_uid(sock)
        if uid != os.getuid():
            raise ControlError(f"{path} is served by another user (uid {uid}): refusing it")
        try:
            sock.sendall(json.dumps({**(args or {}), "command": command}).encode() + b"\n")
            raw = _read_line(sock)
        except TimeoutError as err:
            raise ControlError(_stuck(wait)) from err
        except OSError as err:
            if err.errno in (errno.EPIPE, errno.ECONNRESET):
                raise ControlError("the daemon hung up without answering; see its log") from err
            raise ControlError(f"cannot talk to the daemon: {err.strerror}") from err
    try:
        answer = json.loads(raw)
    except ValueError as err:
        raise ControlError("the daemon's answer is not JSON (another version?)") from err
    if not isinstance(answer, dict):
        raise ControlError("the daemon's answer is not an object (another version?)")
    if not answer.get("ok"):
        raise CommandFailed(str(answer.get("error") or "the daemon refused"))
    return answer.get("result")


def _read_line(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if chunk.endswith(b"\n"):
            break
        if size > MAX_REPLY:
            raise ControlError("the daemon's answer is too long")
    if not chunks:
        raise ControlError("the daemon hung up without answering; see its log")
    return b"".join(chunks)


def _stuck(wait: float) -> str:
    return (
        f"the daemon did not answer within {wait:g} s: it may be stuck; "
        "see `journalctl --user -u trakt-scrobbled -e` and restart it"
    )
