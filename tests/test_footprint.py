"""What the daemon's process loads: the heavy libraries stay out of it.

guessit (and rebulk, babelfish) runs in the short-lived parse worker; the listener is h11, not a
web framework. Each of these was megabytes of resident memory held for the daemon's whole life
(`bench/mpv_bench.py` measures the total); this guards the design, not a figure.
"""

from __future__ import annotations

import json
import subprocess
import sys

KEPT_OUT = (
    "guessit",
    "rebulk",
    "babelfish",
    "PTT",
    "regex",
    "trakt_scrobbled.rules",
    "aiohttp",
    "yarl",
    "multidict",
    "httpx_ws",
    "wsproto",
    "dbus_fast",
)
"""The parsers live in the parse worker; httpx-ws and wsproto load only when a live mode connects,
dbus_fast only when [mpris] is on (or the first desktop notification goes out)."""


def test_the_daemon_modules_leave_the_heavy_libraries_out() -> None:
    probe = (
        "import json, sys\n"
        "import trakt_scrobbled.cli, trakt_scrobbled.app, trakt_scrobbled.parse_worker\n"
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(json.loads(result.stdout))
    assert "trakt_scrobbled" in loaded and "h11" in loaded
    assert sorted(loaded.intersection(KEPT_OUT)) == []
