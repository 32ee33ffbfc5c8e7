"""The login QR code decodes on a light terminal and on a dark one.

The code's text is drawn as a terminal would draw it (each character cell in its foreground
and background colour, the terminal's defaults where the text sets none) into a grayscale
image, which a real decoder (ZXing, inversion off: zbar reads no inverted code either) must read.
"""

from __future__ import annotations

import io
import re

import pytest
import segno
import zxingcpp

from trakt_scrobbled.term import qr_lines

URL = "https://trakt.tv/activate/8B2F4A1C"

LIGHT = (0, 255)  # default foreground, background: dark text on white
DARK = (230, 24)  # light text on a near-black background
SCALE = 4
MARGIN = 6  # cells of the terminal's own background around the code

_SGR = re.compile(r"\x1b\[([0-9;]*)m")


def _level(code: int) -> int:
    base = code % 10
    if base == 0:
        return 0
    if base == 7:
        return 255 if code >= 90 else 200
    return 128


def render(text: str, default_fg: int, default_bg: int) -> tuple[bytearray, int, int]:
    """The text as a grayscale image: one cell is SCALE pixels wide, 2 * SCALE tall."""
    rows: list[list[tuple[int, int]]] = []  # per pixel-half-row, a list of (top, bottom) values
    for line in text.splitlines():
        fg, bg = default_fg, default_bg
        cells: list[tuple[int, int]] = []
        pos = 0
        for m in [*_SGR.finditer(line), None]:
            end = m.start() if m is not None else len(line)
            for ch in line[pos:end]:
                top = fg if ch in "█▀" else bg
                bottom = fg if ch in "█▄" else bg
                cells.append((top, bottom))
            if m is None:
                break
            pos = m.end()
            for part in (m.group(1) or "0").split(";"):
                code = int(part or 0)
                if code == 0:
                    fg, bg = default_fg, default_bg
                elif 30 <= code <= 37 or 90 <= code <= 97:
                    fg = _level(code)
                elif 40 <= code <= 47 or 100 <= code <= 107:
                    bg = _level(code)
                elif code == 39:
                    fg = default_fg
                elif code == 49:
                    bg = default_bg
        rows.append(cells)
    width = max(len(r) for r in rows) + 2 * MARGIN
    height = (len(rows) + 2 * MARGIN) * 2
    grid = [[default_bg] * width for _ in range(height)]
    for y, cells in enumerate(rows):
        for x, (top, bottom) in enumerate(cells):
            grid[(y + MARGIN) * 2][x + MARGIN] = top
            grid[(y + MARGIN) * 2 + 1][x + MARGIN] = bottom
    w, h = width * SCALE, height * SCALE
    pixels = bytearray(w * h)
    for gy, row in enumerate(grid):
        strip = bytes(v for v in row for _ in range(SCALE))
        for dy in range(SCALE):
            start = (gy * SCALE + dy) * w
            pixels[start : start + w] = strip
    return pixels, w, h


def decode(text: str, theme: tuple[int, int]) -> list[str]:
    pixels, w, h = render(text, *theme)
    image = memoryview(pixels).cast("B", (h, w))
    found = zxingcpp.read_barcodes(image, try_invert=False)
    return [b.text for b in found]


@pytest.mark.parametrize("theme", [LIGHT, DARK], ids=["light", "dark"])
@pytest.mark.parametrize("unicode", [True, False], ids=["blocks", "spaces"])
def test_the_login_qr_decodes_on_light_and_dark_terminals(
    theme: tuple[int, int], unicode: bool
) -> None:
    text = "\n".join(qr_lines(URL, unicode=unicode))
    assert decode(text, theme) == [URL]


def test_the_default_colours_drawing_fails_on_one_of_them() -> None:
    """What it replaced: segno's compact drawing in the terminal's own colours reads on one
    background only. The test's renderer and decoder tell the two apart."""
    out = io.StringIO()
    segno.make(URL, error="l").terminal(out=out, compact=True)
    results = [decode(out.getvalue(), theme) == [URL] for theme in (LIGHT, DARK)]
    assert results.count(True) == 1, results


def test_the_quiet_zone_is_there() -> None:
    lines = qr_lines(URL)
    plain = [_SGR.sub("", line) for line in lines]
    assert plain[0].strip() == "" and plain[1].strip() == "", "two lines = four modules above"
    assert all(line.startswith("    ") for line in plain), "four modules on the left"
    assert all(line.startswith("\x1b[30;107m") and line.endswith("\x1b[0m") for line in lines)
