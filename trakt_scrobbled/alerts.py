"""Telling a person who is not looking at a terminal: a desktop notification over D-Bus
(org.freedesktop.Notifications) and, optionally, push through Apprise URLs.

Three things need a person: a Trakt login to approve (with its code), an account's queue parked
by Trakt (a limit, VIP needed, a locked account), a scrobble Trakt refused for good. The daemon
says each once; a notification that cannot be shown is a debug line, never a failure. Both
libraries are imported on the first alert only, so an idle daemon's memory holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from trakt_scrobbled.config import NotifyConfig

log = logging.getLogger(__name__)

APP_NAME = "trakt-scrobbled"
BUS_NAME = "org.freedesktop.Notifications"
OBJECT_PATH = "/org/freedesktop/Notifications"
SEND_TIMEOUT = 10.0


class AlertKind(StrEnum):
    LOGIN = "login needed"
    PARKED = "queue parked"
    DEAD = "scrobble failed"


_URGENCY = {AlertKind.LOGIN: 2, AlertKind.PARKED: 2, AlertKind.DEAD: 1}  # critical, normal


@dataclass(frozen=True, slots=True)
class Alert:
    kind: AlertKind
    title: str
    body: str


class Alerts:
    """Sends alerts without ever blocking or failing the caller (the sender, the login loop)."""

    def __init__(self, config: NotifyConfig, env: Mapping[str, str]) -> None:
        self._config = config
        self._bus_address = env.get("DBUS_SESSION_BUS_ADDRESS", "")
        self._desktop: DesktopNotifier | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._failed_once: set[str] = set()

    def use(self, config: NotifyConfig) -> None:
        """A reloaded [notify]."""
        self._config = config

    def __call__(self, alert: Alert) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self.send(alert), name="alert")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def send(self, alert: Alert) -> None:
        if self._config.desktop and self._bus_address:
            if self._desktop is None:
                self._desktop = DesktopNotifier(self._bus_address)
            await self._guarded("desktop", self._desktop.notify(alert))
        if self._config.apprise:
            await self._guarded("apprise", _apprise(self._config.apprise, alert))

    async def _guarded(self, where: str, sending: Any) -> None:
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                await sending
        except Exception as err:  # a notification is a courtesy: never a failure
            level = logging.DEBUG if where in self._failed_once else logging.WARNING
            self._failed_once.add(where)
            log.log(level, "notify: %s notification not shown (%s)", where, _safe(err))

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._desktop is not None:
            self._desktop.close()


def _safe(err: BaseException) -> str:
    """The error's class only for Apprise (its messages may hold the URL and its token)."""
    return type(err).__name__ if "apprise" in type(err).__module__ else str(err) or repr(err)


class DesktopNotifier:
    """org.freedesktop.Notifications on the session bus, through dbus-fast (asyncio)."""

    def __init__(self, address: str) -> None:
        self._address = address
        self._bus: Any = None
        self._replaces: dict[AlertKind, int] = {}
        """The last notification of each kind: a new login code replaces the old one."""

    async def notify(self, alert: Alert) -> int:
        from dbus_fast import Message, MessageType, Variant
        from dbus_fast.aio import MessageBus

        if self._bus is None or not self._bus.connected:
            self._bus = await MessageBus(bus_address=self._address).connect()
        reply = await self._bus.call(
            Message(
                destination=BUS_NAME,
                path=OBJECT_PATH,
                interface=BUS_NAME,
                member="Notify",
                signature="susssasa{sv}i",
                body=[
                    APP_NAME,
                    self._replaces.get(alert.kind, 0),
                    "",
                    alert.title,
                    alert.body,
                    [],
                    {"urgency": Variant("y", _URGENCY[alert.kind])},
                    -1,
                ],
            )
        )
        if reply.message_type is MessageType.ERROR:
            raise RuntimeError(f"{reply.error_name}: {' '.join(map(str, reply.body))}")
        notification_id = int(reply.body[0])
        self._replaces[alert.kind] = notification_id
        return notification_id

    def close(self) -> None:
        if self._bus is not None:
            self._bus.disconnect()
            self._bus = None


async def _apprise(urls: tuple[str, ...], alert: Alert) -> None:
    try:
        import apprise  # type: ignore[import-not-found,unused-ignore]
    except ImportError as err:
        hint = "[notify] apprise needs `pip install 'trakt-scrobbled[notify]'`"
        raise RuntimeError(hint) from err

    def push() -> bool:
        sender = apprise.Apprise()
        for url in urls:
            sender.add(url)
        return bool(sender.notify(title=alert.title, body=alert.body))

    if not await asyncio.to_thread(push):
        raise RuntimeError("no Apprise service took the notification")
