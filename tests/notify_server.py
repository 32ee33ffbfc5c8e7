"""A private D-Bus session bus (the real dbus-daemon) with a minimal notification server on it,
written with dbus-fast: what a desktop's notification daemon would receive."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusDict, DBusInt32, DBusSignature, DBusStr, DBusUInt32
from dbus_fast.service import ServiceInterface, method

DBusStrList = Annotated[list[str], DBusSignature("as")]


@dataclass(frozen=True, slots=True)
class Shown:
    id: int
    app: str
    replaces: int
    title: str
    body: str
    hints: dict[str, Any]


class Notifications(ServiceInterface):
    """org.freedesktop.Notifications, keeping what it was asked to show."""

    def __init__(self) -> None:
        super().__init__("org.freedesktop.Notifications")
        self.shown: list[Shown] = []
        self.changed = asyncio.Event()
        self._next = 0

    @method()
    def Notify(
        self,
        app_name: DBusStr,
        replaces_id: DBusUInt32,
        app_icon: DBusStr,
        summary: DBusStr,
        body: DBusStr,
        actions: DBusStrList,
        hints: DBusDict,
        expire_timeout: DBusInt32,
    ) -> DBusUInt32:
        self._next += 1
        shown_id = replaces_id or self._next
        self.shown.append(
            Shown(
                shown_id,
                app_name,
                replaces_id,
                summary,
                body,
                {k: v.value for k, v in hints.items()},
            )
        )
        self.changed.set()
        return shown_id

    async def wait_for(self, count: int, limit: float = 15.0) -> list[Shown]:
        async with asyncio.timeout(limit):
            while len(self.shown) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.shown


@asynccontextmanager
async def session_bus() -> AsyncIterator[tuple[str, Notifications]]:
    """A dbus-daemon of the test's own, with the notification server on it: (address, server)."""
    program = shutil.which("dbus-daemon")
    if program is None:
        if os.environ.get("CI"):
            pytest.fail("dbus-daemon is missing in CI (scripts/system-deps installs it)")
        pytest.skip("no dbus-daemon (apt-get install dbus-daemon)")
    proc = await asyncio.create_subprocess_exec(
        program,
        "--session",
        "--nofork",
        "--nopidfile",
        "--print-address=1",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(10):
            address = (await proc.stdout.readline()).decode().strip()
        assert address, "dbus-daemon printed no address"
        bus = await MessageBus(bus_address=address).connect()
        server = Notifications()
        bus.export("/org/freedesktop/Notifications", server)
        await bus.request_name("org.freedesktop.Notifications")
        try:
            yield address, server
        finally:
            bus.disconnect()
    finally:
        proc.terminate()
        await proc.wait()
