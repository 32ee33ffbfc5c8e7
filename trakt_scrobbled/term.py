"""The terminal: colour where it helps (and is wanted), and a QR code any phone can scan.

Colour only on a TTY, never with `NO_COLOR` set (no-color.org) or `TERM=dumb`. The QR code
carries its own colours, black modules on a white field with the 4-module quiet zone the
standard asks for: drawn in the terminal's default colours it came out inverted on a light
background, and decoders such as zbar do not read an inverted code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TextIO

RESET = "\x1b[0m"
_QR_COLOURS = "\x1b[30;107m"  # black on bright white, whatever the terminal's own colours
_QR_DARK_CELL = "\x1b[40m  "
_QR_LIGHT_CELL = "\x1b[107m  "
QUIET_ZONE = 4

_STYLES = {"ok": "32", "fail": "1;31", "note": "33", "bold": "1", "dim": "2"}


def wants_colour(stream: TextIO, env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Paint:
    """Wraps text in a style when colour is on; the identity otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, style: str, text: str) -> str:
        if not self.enabled or not text:
            return text
        return f"\x1b[{_STYLES[style]}m{text}{RESET}"


def qr_lines(data: str, *, unicode: bool = True) -> list[str]:
    """`data` as a QR code, one string per terminal line, with explicit colours.

    `unicode`: two modules a character with half blocks; else two spaces a module, coloured by
    their background (for encodings without block characters).
    """
    import segno

    matrix = [[bool(m) for m in row] for row in segno.make(data, error="l").matrix]
    n = len(matrix)
    size = n + 2 * QUIET_ZONE

    def dark(r: int, c: int) -> bool:
        r, c = r - QUIET_ZONE, c - QUIET_ZONE
        return 0 <= r < n and 0 <= c < n and matrix[r][c]

    if not unicode:
        return [
            "".join(_QR_DARK_CELL if dark(r, c) else _QR_LIGHT_CELL for c in range(size)) + RESET
            for r in range(size)
        ]
    glyph = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}
    return [
        _QR_COLOURS + "".join(glyph[dark(r, c), dark(r + 1, c)] for c in range(size)) + RESET
        for r in range(0, size, 2)
    ]
