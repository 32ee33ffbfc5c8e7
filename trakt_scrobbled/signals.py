"""SIGHUP caught from the first moment of `run`, before the event loop can take it.

Importing the daemon's parts takes a moment; a SIGHUP then (a `systemctl reload` racing the
start, a config edit tool) would kill the process under the default action.
"""

from __future__ import annotations

import signal
from types import FrameType


class EarlySignals:
    def __init__(self) -> None:
        self.hup = False
        """A SIGHUP came before the loop's own handler was in place: reload once started."""

    def install(self) -> EarlySignals:
        """Catch SIGHUP from now on; if an `EarlySignals` already does, that one is returned
        (the entry point installs one before the slow imports, `run` asks for it later)."""
        current = getattr(signal.getsignal(signal.SIGHUP), "__self__", None)
        if isinstance(current, EarlySignals):
            return current
        signal.signal(signal.SIGHUP, self._on_hup)
        return self

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self.hup = True
