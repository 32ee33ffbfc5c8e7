"""Log a recurring trouble once (then at debug), and its recovery once."""

from __future__ import annotations

import logging


class LogOnce:
    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._keys: set[str] = set()

    def once(self, key: str, level: int, message: str, *args: object) -> None:
        if key in self._keys:
            self._log.debug(message, *args)
        else:
            self._keys.add(key)
            self._log.log(level, message, *args)

    def said(self, key: str) -> bool:
        """Whether `key` was said and not cleared since."""
        return key in self._keys

    def clear(self, key: str) -> bool:
        """Forget `key`; True when it had been said (so the recovery is worth saying)."""
        if key in self._keys:
            self._keys.discard(key)
            return True
        return False
