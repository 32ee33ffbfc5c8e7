"""Notices a file being written, replaced or created (the config file, the token file),
including editors that save by writing a new file and renaming it over the old one: the file's
inode changes, so its folder is watched, not the file.

The folder's parent is watched too: a folder deleted and made again (a dotfiles tool, `rm -r`
then a restore) is noticed, and the new folder watched in its turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger(__name__)


class _Handler(FileSystemEventHandler):
    def __init__(
        self, target: str, folder: str, fire: Callable[[], None], moved: Callable[[], None]
    ) -> None:
        self._target = target
        self._folder = folder
        self._fire = fire
        self._moved = moved

    def on_any_event(self, event: FileSystemEvent) -> None:
        # Runs on watchdog's thread: only hand over to the loop.
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = {os.fsdecode(event.src_path), os.fsdecode(getattr(event, "dest_path", "") or "")}
        if self._target in paths:
            self._fire()
        elif self._folder in paths:
            self._moved()


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
        self._observer: Any = None
        self._handler: _Handler | None = None
        self._folder_watch: Any = None

    def start(self) -> bool:
        folder = self._path.parent
        parent = folder.parent
        if not folder.is_dir() and not parent.is_dir():
            log.debug("not watching %s: neither its folder nor the one above exists", self._path)
            return False
        handler = _Handler(str(self._path), str(folder), self._fired, self._folder_changed)
        observer = Observer()
        if parent.is_dir() and parent != folder:
            observer.schedule(handler, str(parent), recursive=False)
        observer.daemon = True
        self._observer = observer
        self._handler = handler
        self._watch_folder()
        observer.start()
        return True

    def _watch_folder(self) -> None:
        """(Re)watch the folder, if it exists: after it was made again, the old watch is dead."""
        observer, handler = self._observer, self._handler
        if observer is None or handler is None:
            return
        if self._folder_watch is not None:
            with contextlib.suppress(Exception):  # its emitter may have ended with the folder
                observer.unschedule(self._folder_watch)
            self._folder_watch = None
        if self._path.parent.is_dir():
            try:
                self._folder_watch = observer.schedule(
                    handler, str(self._path.parent), recursive=False
                )
            except OSError as err:  # gone again already: the parent's watch tells us later
                log.debug("cannot watch %s: %s", self._path.parent, err)

    def _fired(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed while we shut down
            self._loop.call_soon_threadsafe(self._arm)

    def _folder_changed(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._refollow)

    def _refollow(self) -> None:
        self._watch_folder()
        self._arm()  # the file may be in the new folder already, or gone with the old one

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
            self._folder_watch = None
