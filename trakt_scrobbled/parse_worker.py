"""File-name parsing (guessit) in a child process.

guessit needs ~15 MB once its rules are built, and the daemon parses a name only when a new
file starts playing. A child that parses, then exits after a minute of idleness, keeps that
memory out of the long-running daemon. One JSON request a line in, one JSON answer a line out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys

from trakt_scrobbled.identify import Guess, InProcessParser, parse_any

log = logging.getLogger(__name__)

_LINE_LIMIT = 1 << 20


class WorkerParser:
    """The daemon's side: starts the child on demand, stops it when idle."""

    def __init__(self, *, idle: float = 60.0, timeout: float = 30.0) -> None:
        self._idle = idle
        self._timeout = timeout
        self._lock = asyncio.Lock()
        self._proc: asyncio.subprocess.Process | None = None
        self._reaper: asyncio.TimerHandle | None = None
        self._fallback = InProcessParser()

    async def parse(self, path: str, *, check_extension: bool) -> Guess:
        async with self._lock:
            if self._reaper is not None:
                self._reaper.cancel()
            try:
                guess = await asyncio.wait_for(self._ask(path, check_extension), self._timeout)
            except (OSError, ValueError, KeyError, TimeoutError, EOFError) as err:
                # A broken child must not cost a watch: parse here this once.
                log.warning("the parsing process failed (%s); parsing in the daemon", err)
                await self._stop()
                return await self._fallback.parse(path, check_extension=check_extension)
            self._reaper = asyncio.get_running_loop().call_later(
                self._idle, lambda: asyncio.ensure_future(self._stop_if_idle())
            )
            return guess

    async def _ask(self, path: str, check_extension: bool) -> Guess:
        proc = await self._child()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps({"path": path, "check": check_extension}).encode() + b"\n")
        await proc.stdin.drain()
        line = await proc.stdout.readline()
        if not line:
            raise EOFError("the parsing process exited")
        return Guess.from_json(json.loads(line))

    async def _child(self) -> asyncio.subprocess.Process:
        if self._proc is None or self._proc.returncode is not None:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "trakt_scrobbled.parse_worker",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=_LINE_LIMIT,
            )
        return self._proc

    async def _stop_if_idle(self) -> None:
        if not self._lock.locked():
            async with self._lock:
                await self._stop()

    async def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 5.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def aclose(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        async with self._lock:
            await self._stop()


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        guess = parse_any(str(request["path"]), check_extension=bool(request["check"]))
        sys.stdout.write(json.dumps(guess.to_json()) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
