"""Household figures: accounts do not wait for each other.

Run from the repository root:  .venv/bin/python -m bench.household_bench [--rows 500]
[--interval 0.02] [--pauses 30]

In one process, over real HTTP on loopback, real SQLite (one state database) and the fake Trakt
(which knows each user by token and spaces each user's POSTs): one lane per account, as the
daemon runs them (its own outbox lane, token, client with its own POST spacing, sender).
Not yet the daemon subprocess: app.py does not build lanes yet (see the issue's report).

1. alice is parked (her token expired, her refresh refused: login needed) with rows queued;
   bob pauses PAUSES times: his pause -> Trakt latency (enqueue to the fake's arrival), median
   and p95. Goal: median <= 10 ms.
2. alice and bob each have a backlog of ROWS pauses: both drain at once; each lane's smallest
   gap between POSTs (goal >= INTERVAL, Trakt's 1 s scaled by INTERVAL) and the total time
   against one lane's (ROWS - 1) * INTERVAL (goal: about the time of one).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.fake_trakt import FakeTrakt
from trakt_scrobbled.clock import SystemClock
from trakt_scrobbled.events import Ids, MediaType, Scrobble, ScrobbleVerb, TraktItem
from trakt_scrobbled.outbox import Outbox
from trakt_scrobbled.sender import Sender, SenderState
from trakt_scrobbled.store import open_db
from trakt_scrobbled.trakt.auth import Auth, Token, TokenStore
from trakt_scrobbled.trakt.client import TraktClient
from trakt_scrobbled.trakt.ratelimit import PostRateLimiter

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-secret"  # noqa: S105 - the fake's


def pause(item: TraktItem, play: str) -> Scrobble:
    return Scrobble(ScrobbleVerb.STOP, play, item, 40.0, watched=False)


async def until(condition: Callable[[], bool], limit: float) -> None:
    """Polled: the fake records arrivals in its own thread, with no event to await."""
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.001)


async def run(rows: int, interval: float, pauses: int, state: Path) -> None:
    clock = SystemClock()
    with FakeTrakt(post_interval=interval) as fake:
        movie = fake.add_movie("The Matrix", 1999, imdb="tt0133093")
        item = TraktItem(MediaType.MOVIE, Ids(trakt=movie.ids.trakt), title="The Matrix")
        conn = open_db(state / "state.db")
        lanes: dict[str, tuple[Outbox, Sender, TraktClient]] = {}
        tasks = []
        for name in ("alice", "bob"):
            fake.add_user(name)
            store = TokenStore(state / f"token-{name}.json")
            pair = fake.issue_token(name)
            store.save(
                Token(pair.access_token, pair.refresh_token, pair.created_at + pair.expires_in)
            )
            outbox = Outbox(conn, clock, account=name)
            auth = Auth(store, clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
            limiter = PostRateLimiter(clock, interval)
            client = TraktClient(fake.url, CLIENT_ID, limiter, token=auth.access_token)
            sender = Sender(outbox, client, auth, clock, rng=random.Random(1), limiter=limiter)
            lanes[name] = (outbox, sender, client)
            tasks.append(asyncio.create_task(sender.run()))

        # 1. alice parked, bob playing.
        fake.expire_access_tokens("alice")
        fake.fail_next(10**6, 401, path_prefix="/oauth/token")
        for n in range(20):
            lanes["alice"][0].enqueue(pause(item, f"parked{n}"))
        await until(lambda: lanes["alice"][1].state is SenderState.LOGIN_NEEDED, 10)
        latencies = []
        for n in range(pauses):
            await asyncio.sleep(max(interval, 0.05))
            count = len(fake.requests("/scrobble"))
            sent = time.monotonic()
            lanes["bob"][0].enqueue(pause(item, f"bob{n}"))
            await until(lambda: len(fake.requests("/scrobble")) > count, 5)  # noqa: B023
            latencies.append((fake.requests("/scrobble")[-1].monotonic - sent) * 1000)
        latencies.sort()
        print(
            f"alice parked ({lanes['alice'][1].state}, {lanes['alice'][0].counts().pending} "
            f"rows kept); bob's pause -> Trakt over {pauses} pauses: "
            f"median {statistics.median(latencies):.1f} ms, "
            f"p95 {latencies[int(len(latencies) * 0.95) - 1]:.1f} ms (goal: median <= 10 ms)"
        )
        fake.clear_faults()
        conn.execute("DELETE FROM outbox")  # alice's parked rows: not part of the backlogs

        # 2. one backlog alone (the baseline), then two at once.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        alone = await drain(fake, lanes, ["bob"], rows, interval, clock, state, item)
        both = await drain(fake, lanes, ["alice", "bob"], rows, interval, clock, state, item)
        print(
            f"both backlogs of {rows} drained in {both:.2f} s; one alone took {alone:.2f} s "
            f"(ratio {both / alone:.2f}; one after the other would be 2.00); the floor at "
            f"{interval} s spacing is {(rows - 1) * interval:.2f} s"
        )
        for _, _, client in lanes.values():
            await client.aclose()
        conn.close()


async def drain(
    fake: FakeTrakt,
    lanes: dict[str, tuple[Outbox, Sender, TraktClient]],
    names: list[str],
    rows: int,
    interval: float,
    clock: SystemClock,
    state: Path,
    item: TraktItem,
) -> float:
    """Fresh logins and senders for `names`, ROWS pauses queued each, drained at once."""
    mark = time.monotonic()
    for name in names:
        outbox, _, old = lanes[name]
        await old.aclose()
        store = TokenStore(state / f"token-{name}.json")
        pair = fake.issue_token(name)
        store.save(Token(pair.access_token, pair.refresh_token, pair.created_at + pair.expires_in))
        auth = Auth(store, clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        limiter = PostRateLimiter(clock, interval)
        client = TraktClient(fake.url, CLIENT_ID, limiter, token=auth.access_token)
        sender = Sender(outbox, client, auth, clock, rng=random.Random(1), limiter=limiter)
        lanes[name] = (outbox, sender, client)
        for n in range(rows):
            outbox.enqueue(pause(item, f"{name}-{mark}-{n}"))
    start = time.monotonic()
    tasks = [asyncio.create_task(lanes[name][1].run()) for name in names]
    await until(lambda: all(lanes[name][0].counts().pending == 0 for name in names), 3600)
    took = time.monotonic() - start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for name in names:
        arrivals = [
            r.monotonic
            for r in fake.requests("/scrobble")
            if r.user == name and r.monotonic > start and r.status == 201
        ]
        gaps = [b - a for a, b in itertools.pairwise(arrivals)]
        print(
            f"  {'+'.join(names)}: {name} {len(arrivals)} POSTs, smallest gap "
            f"{min(gaps) * 1000:.1f} ms (goal >= {interval * 1000:.0f} ms), median gap "
            f"{statistics.median(gaps) * 1000:.1f} ms"
        )
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500, help="backlog per account (500)")
    parser.add_argument(
        "--interval",
        type=float,
        default=0.02,
        help="POST spacing per user, Trakt's 1 s scaled (default 0.02; 1.0 is real time)",
    )
    parser.add_argument("--pauses", type=int, default=30, help="bob's pauses timed (30)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.rows, args.interval, args.pauses, Path(tmp)))


if __name__ == "__main__":
    main()
