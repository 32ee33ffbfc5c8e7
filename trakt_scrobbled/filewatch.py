"""Notices a file being written, replaced or created (the config file, the token file),
including editors that save by writing a new file and renaming it over the old one: the file's
inode changes, so its folder is watched, not the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger(__name__)


class _Handler(FileSystemEventHandler):
    def __init__(self, target: str, fire: Callable[[], None]) -> None:
        self._target = target
        self._fire = fire

    def on_any_event(self, event: FileSystemEvent) -> None:
        # Runs on watchdog's thread: only hand over to the loop.
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = {os.fsdecode(event.src_path), os.fsdecode(getattr(event, "dest_path", "") or "")}
        if self._target in paths:
            self._fire()


class FileWatcher:
    """Calls `on_change` on the loop, once per burst of writes (editors write several times)."""

    def __init__(
        self,
        path: Path,
        on_change: Callable[[], None],
        loop: asyncio.AbstractEventLoop,
        *,
        settle: float = 0.3,
    ) -> None:
        self._path = path
        self._on_change = on_change
        self._loop = loop
        self._settle = settle
        self._timer: asyncio.TimerHandle | None = None
        self._observer: Observer | None = None  # type: ignore[valid-type]

    def start(self) -> bool:
        folder = self._path.parent
        if not folder.is_dir():
            log.debug("not watching %s: its folder does not exist", self._path)
            return False
        handler = _Handler(str(self._path), self._fired)
        observer = Observer()
        observer.schedule(handler, str(folder), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer
        return True

    def _fired(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed while we shut down
            self._loop.call_soon_threadsafe(self._arm)

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(self._settle, self._on_change)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
