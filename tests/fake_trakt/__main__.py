"""Serves a fake Trakt in the foreground: prints its URL on one line, stops on SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .server import FakeTrakt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fake_trakt", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--catalogue", type=Path, help="JSON file of movies and shows")
    parser.add_argument("--client-id", default="test-client-id")
    parser.add_argument("--client-secret", default="test-secret")
    parser.add_argument("--device-interval", type=float, default=1.0)
    parser.add_argument("--post-interval", type=float, default=1.0)
    parser.add_argument("--auto-approve", action="store_true", help="device codes need no approval")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    fake = FakeTrakt(
        args.client_id,
        args.client_secret,
        port=args.port,
        device_interval=args.device_interval,
        post_interval=args.post_interval,
        auto_approve=args.auto_approve,
    )
    if args.catalogue is not None:
        fake.load_catalogue(args.catalogue)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with fake:
        print(fake.url, flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
