"""Figures for the hostile-conditions attacks (issue 16), each rerun against the real parts.

Run from the repository root:  .venv/bin/python -m bench.hostile_bench [--only NAME ...]

  disk      watches made while the state folder's file system is full (a tmpfs; needs root):
            lost and duplicated once space is back
  slowloris 200 slow connections on the webhook listener: real webhooks answered, 5xx, latency
  kodi      CPU seconds to split a 4 MB Kodi object sent in 64 KB pieces (goal < 0.2 s)
  mpv       CPU seconds for an 8 MB mpv IPC line with no newline
  backlog   seconds from Trakt's return to the last queued watch delivered (goal <= 5 s)
  config    the daemon's longest webhook answer while it reloads a 4 MB config (60k overrides)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.daemon import Daemon, Home, log_in
from tests.fake_trakt import FakeTrakt
from tests.fake_trakt.catalogue import item_key
from tests.plex_payloads import SECRET, movie, plex_stack, webhook
from trakt_scrobbled.clock import SystemClock
from trakt_scrobbled.events import Ids, MediaType, Scrobble, ScrobbleVerb, TraktItem
from trakt_scrobbled.outbox import Outbox
from trakt_scrobbled.sender import Sender
from trakt_scrobbled.store import open_db
from trakt_scrobbled.trakt.auth import Auth, Token, TokenStore
from trakt_scrobbled.trakt.client import TraktClient
from trakt_scrobbled.trakt.ratelimit import PostRateLimiter

CLIENT_ID = "test-client-id"


async def _until(condition: Callable[[], bool], limit: float) -> bool:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


class _Rig:
    """The real outbox, sender and client against the fake Trakt (real 1 POST/s)."""

    def __init__(self, fake: FakeTrakt, state: Path, tokens: Path, backoff_base: float) -> None:
        clock = SystemClock()
        pair = fake.issue_token()
        store = TokenStore(tokens / "token.json")
        store.save(Token(pair.access_token, pair.refresh_token, pair.created_at + pair.expires_in))
        self.conn = open_db(state / "state.db")
        self.outbox = Outbox(self.conn, clock)
        auth = Auth(store, clock, client_id=CLIENT_ID, client_secret="test-secret")  # noqa: S106 - the fake's
        limiter = PostRateLimiter(clock)
        self.client = TraktClient(fake.url, CLIENT_ID, limiter, token=auth.access_token)
        self.sender = Sender(
            self.outbox,
            self.client,
            auth,
            clock,
            limiter=limiter,
            backoff_base=backoff_base,
            rng=random.Random(1),
        )
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [
            asyncio.create_task(self.sender.run()),
            asyncio.create_task(self.outbox.keep_trying()),
        ]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.client.aclose()
        self.conn.close()


def _watch(fake: FakeTrakt, n: int) -> Scrobble:
    film = fake.add_movie(f"Bench Film {n}", 1960 + n)
    item = TraktItem(MediaType.MOVIE, Ids(trakt=film.ids.trakt), title=film.title)
    return Scrobble(ScrobbleVerb.STOP, f"play-{n}", item, 95.0, watched=True)


# --- disk ----------------------------------------------------------------------------------------


async def bench_disk(watches: int = 10) -> None:
    from tests.smallfs import fill

    with tempfile.TemporaryDirectory(prefix="hb-disk-") as tmp, FakeTrakt() as fake:
        mount = Path(tmp) / "small"
        mount.mkdir()
        done = subprocess.run(  # noqa: ASYNC221 - once, before anything runs
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            print("disk: skipped (cannot mount a tmpfs here; run as root)")
            return
        try:
            rig = _Rig(fake, mount, Path(tmp), backoff_base=0.5)
            rig.start()
            filler = fill(mount)
            for n in range(watches):
                rig.outbox.enqueue(_watch(fake, n))
            held = rig.outbox.held
            await asyncio.sleep(3.0)  # the disk stays full a while
            filler.unlink()
            await _until(lambda: len(fake.history()) >= watches, 60)
            await asyncio.sleep(1.0)  # anything sent twice would show by now
            await rig.close()
            titles = [item_key(e.item) for e in fake.history()]
            lost = watches - len(set(titles))
            dup = len(titles) - len(set(titles))
            print(
                f"disk: {watches} watches made on a full disk ({held} held in memory): "
                f"lost {lost}, duplicated {dup} once space was back"
            )
        finally:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)  # noqa: ASYNC221


# --- slowloris -----------------------------------------------------------------------------------


async def _slow(port: int, source: str, stop: asyncio.Event, reconnect: bool) -> None:
    while not stop.is_set():
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        except OSError:
            await asyncio.sleep(0.05)
            continue
        with contextlib.suppress(OSError):
            for byte in b"POST /plex/x HTTP/1.1\r\nHost: x\r\n":
                if stop.is_set():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(1.0)
        writer.close()
        if not reconnect:
            await stop.wait()


async def _slow_body(port: int, stop: asyncio.Event) -> None:
    with contextlib.suppress(OSError):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST /plex/{SECRET} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 100000\r\n\r\n".encode()
        )
        while not stop.is_set():
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(1.0)
        writer.close()


async def bench_slowloris(webhooks: int = 7) -> None:
    for source, reconnect, what in (
        ("127.0.0.1", False, "200 slow connections from Plex's own address"),
        ("127.0.0.2", True, "200 reconnecting slow connections from another host"),
        ("127.0.0.1", True, "200 reconnecting slow connections from Plex's own address"),
        ("body", False, "200 trickled bodies from Plex's own address, after 6 s"),
    ):
        async with plex_stack() as stack:
            stop = asyncio.Event()
            port = stack.server.port
            attackers = [
                asyncio.create_task(
                    _slow_body(port, stop)
                    if source == "body"
                    else _slow(port, source, stop, reconnect)
                )
                for _ in range(200)
            ]
            await asyncio.sleep(6.0 if source == "body" else 2.0)
            codes: list[int] = []
            took: list[float] = []
            for n in range(webhooks):
                started = time.monotonic()
                try:
                    meta = movie(view_offset=1000 * n, rating_key=str(9000 + n))
                    codes.append((await stack.post(webhook("media.play", meta))).status_code)
                except httpx.HTTPError:
                    codes.append(0)
                took.append(time.monotonic() - started)
            stop.set()
            for task in attackers:
                task.cancel()
            await asyncio.gather(*attackers, return_exceptions=True)
        answered = sum(c == 200 for c in codes)
        errors = sum(c >= 500 for c in codes)
        print(
            f"slowloris: {what}: {answered}/{webhooks} webhooks answered 200, {errors} 5xx, "
            f"slowest {max(took):.2f} s"
        )


# --- kodi and mpv streams ------------------------------------------------------------------------


def bench_kodi() -> None:
    from trakt_scrobbled.players.kodi import _JsonStream

    movies = [
        {"label": f"Movie {i}", "movieid": i, "file": f"/media/Movie {i} (2001).mkv", "year": 2001}
        for i in range(60000)
    ]
    text = json.dumps({"id": 1, "jsonrpc": "2.0", "result": {"movies": movies}})[: 4 * 1024 * 1024]
    stream = _JsonStream()
    started = time.process_time()
    for i in range(0, len(text), 65536):
        stream.feed(text[i : i + 65536])
    cpu = time.process_time() - started
    print(f"kodi: a 4 MB object in 64 KB pieces, never finished: {cpu:.3f} CPU-s (goal < 0.2)")


def bench_mpv() -> None:
    import python_mpv_jsonipc  # noqa: F401 - the base class of the reader

    from trakt_scrobbled.players.mpv import _LineReader

    with tempfile.TemporaryDirectory(prefix="hb-mpv-", dir="/tmp") as tmp:
        path = str(Path(tmp) / "s")
        server = socket.socket(socket.AF_UNIX)
        server.bind(path)
        server.listen()
        ended = threading.Event()
        reader = _LineReader(path, callback=lambda data: None, quit_callback=ended.set)
        peer, _ = server.accept()
        started = time.process_time()
        reader.start()
        peer.sendall(b"x" * (8 * 1024 * 1024))
        peer.shutdown(socket.SHUT_WR)
        ended.wait(30)
        cpu = time.process_time() - started
        peer.close()
        server.close()
        reader.join(5)
    print(f"mpv: an 8 MB line with no newline: {cpu:.3f} CPU-s")


# --- backlog -------------------------------------------------------------------------------------


async def bench_backlog(watches: int = 3, outage: float = 20.0) -> None:
    with tempfile.TemporaryDirectory(prefix="hb-backlog-") as tmp, FakeTrakt() as fake:
        rig = _Rig(fake, Path(tmp), Path(tmp), backoff_base=2.0)
        fake.set_outage(True)
        rig.start()
        for n in range(watches):
            rig.outbox.enqueue(_watch(fake, n))
        await asyncio.sleep(outage)
        fake.set_outage(False)
        back = time.monotonic()
        # The first call to succeed after the outage: an identification search, say.
        await rig.client.get("/search/movie", {"query": "anything"})
        ok = await _until(lambda: len(fake.history()) >= watches, 120)
        took = time.monotonic() - back
        await rig.close()
        print(
            f"backlog: {watches} watches queued through a {outage:.0f} s outage delivered "
            f"{took:.2f} s after Trakt was back{'' if ok else ' (NOT ALL)'} (goal <= 5)"
        )


# --- config --------------------------------------------------------------------------------------


def bench_config(overrides: int = 60000) -> None:
    with tempfile.TemporaryDirectory(prefix="hb-config-") as tmp, FakeTrakt() as fake:
        players = f'[mpv]\nenabled = false\n\n[plex]\nenabled = true\nsecret = "{SECRET}"\n'
        home = Home.create(Path(tmp), fake.url, players=players)
        log_in(fake, home)
        with Daemon(home) as daemon:
            daemon.wait_for_log("ready", timeout=30)
            block = "".join(
                f'\n[[overrides]]\npattern = "*/Film {n:05d} Directory/*"\ntype = "movie"\n'
                f"trakt = {n + 1}\n"
                for n in range(overrides)
            )
            text = home.config_file.read_text() + block
            mark = daemon.mark()
            url = f"http://127.0.0.1:{home.server_port}/nothing-here"
            slowest = 0.0
            written = time.monotonic()
            home.config_file.write_text(text)
            with httpx.Client(timeout=30) as client:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    started = time.monotonic()
                    client.get(url)
                    slowest = max(slowest, time.monotonic() - started)
                    if "config reloaded" in daemon.stderr()[mark:]:
                        applied = time.monotonic() - written
                        break
                    time.sleep(0.02)
                else:
                    applied = float("nan")
            daemon.terminate()
        print(
            f"config: {len(text) / 1e6:.1f} MB config, {overrides} overrides, applied in "
            f"{applied:.1f} s: slowest listener answer meanwhile {slowest:.3f} s"
        )


BENCHES = ("disk", "slowloris", "kodi", "mpv", "backlog", "config")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=BENCHES, default=list(BENCHES))
    args = parser.parse_args()
    print("command:", shlex.join([".venv/bin/python", "-m", "bench.hostile_bench", *sys.argv[1:]]))
    for name in args.only:
        if name == "disk":
            asyncio.run(bench_disk())
        elif name == "slowloris":
            asyncio.run(bench_slowloris())
        elif name == "kodi":
            bench_kodi()
        elif name == "mpv":
            bench_mpv()
        elif name == "backlog":
            asyncio.run(bench_backlog())
        elif name == "config":
            bench_config()


if __name__ == "__main__":
    main()
