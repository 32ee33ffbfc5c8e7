"""Injected failures: what the network or Trakt's edge does to a request before Trakt sees it,
or to its answer after."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    STATUS = "status"
    """Answer a status (5xx, 52x, 429, anything) without touching state."""
    DELAY = "delay"
    """Wait, then handle normally (even if the client gave up meanwhile)."""
    DROP = "drop"
    """Read the request, then close the connection without an answer; state untouched."""
    DROP_AFTER = "drop_after"
    """Handle the request (state changes), then close without an answer: a lost reply."""
    TRUNCATE_AFTER = "truncate_after"
    """Handle the request (state changes), then send its answer's body cut in half."""
    STATUS_AFTER = "status_after"
    """Handle the request (state changes), then answer `status` instead: the edge gave up on
    Trakt's answer (Cloudflare 520/524, a gateway 502/504) after Trakt took the request."""


@dataclass(slots=True)
class Fault:
    """One armed rule; `remaining` counts down as matching requests consume it."""

    kind: FaultKind
    remaining: int
    path_prefix: str | None = None
    method: str | None = None
    status: int = 503
    retry_after: float | None = None
    html: bool = False
    seconds: float = 0.0
    user: str | None = None
    """Only requests made with this user's token (FakeTrakt.add_user); None: anyone's."""

    def matches(self, method: str, path: str, user: str | None = None) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        if self.user is not None and self.user != user:
            return False
        return self.path_prefix is None or path.startswith(self.path_prefix)


class FaultPlan:
    """Armed faults in the order they were armed, plus the outage switch.

    Not thread-safe on its own: `FakeTrakt` guards it with its lock.
    """

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self.outage: Fault | None = None

    def arm(self, fault: Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("a fault needs a count of at least 1")
        self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()
        self.outage = None

    def take(self, method: str, path: str, user: str | None = None) -> Fault | None:
        """The fault this request meets, consuming one use of it."""
        if self.outage is not None:
            return self.outage
        for fault in self._faults:
            if fault.matches(method, path, user):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None
