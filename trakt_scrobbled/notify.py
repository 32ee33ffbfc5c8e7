"""systemd's notification protocol (sd_notify): readiness, status line, watchdog, reload, stop.

Outside systemd (no NOTIFY_SOCKET) every call is a no-op, so the daemon runs the same anywhere.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping

import sdnotify

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._enabled = bool(env.get("NOTIFY_SOCKET"))
        self._sd = sdnotify.SystemdNotifier() if self._enabled else None
        self._status: str | None = None
        self.watchdog_interval = _watchdog_interval(env)
        """Seconds between WATCHDOG=1 pings (half of WatchdogSec), or None when not asked."""

    @property
    def enabled(self) -> bool:
        """Whether systemd listens (NOTIFY_SOCKET is set)."""
        return self._enabled

    def _send(self, message: str) -> None:
        if self._sd is not None:
            # sdnotify encodes as latin-1; systemd reads UTF-8: hand it the UTF-8 bytes.
            self._sd.notify(message.encode("utf-8").decode("latin-1"))

    def ready(self) -> None:
        self._send("READY=1")

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def ping(self) -> None:
        self._send("WATCHDOG=1")

    def status(self, text: str) -> None:
        """The one line `systemctl --user status` shows; sent only when it changed."""
        line = " ".join(text.split())
        if line != self._status:
            self._status = line
            self._send(f"STATUS={line}")


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    raw = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not raw or (pid and pid != str(os.getpid())):
        return None
    try:
        usec = int(raw)
    except ValueError:
        return None
    return usec / 2_000_000 if usec > 0 else None
