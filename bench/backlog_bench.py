"""Backlog figures: how a long outage's watches reach Trakt once it is back.

Run from the repository root:  .venv/bin/python -m bench.backlog_bench [--items 1000] [--outage 10]

The daemon runs as a subprocess (the real thing: its sender, client, rate limiter and SQLite
outbox) against the fake Trakt, which is in an outage (every connection dropped) when it
starts. ITEMS watched stops of distinct movies wait in its outbox, ended over the last two days
(as an earlier run, offline, would have left them). After OUTAGE seconds of failed tries the
outage ends; the bench reports how many POSTs it took to drain the queue (goal: ITEMS / 100,
the history batch size), how long, and whether every watch is in Trakt's history exactly once
with its own time.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.daemon import Daemon, Home, log_in, queue_counts
from tests.fake_trakt import FakeTrakt
from tests.fake_trakt.catalogue import item_key
from trakt_scrobbled.clock import SystemClock
from trakt_scrobbled.events import Ids, MediaType, Scrobble, ScrobbleVerb, TraktItem
from trakt_scrobbled.outbox import Outbox
from trakt_scrobbled.store import open_db

SPREAD = 2 * 86400.0
"""The queued watches ended over this many seconds before the run."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000, help="watches queued (default 1000)")
    parser.add_argument(
        "--outage", type=float, default=10.0, help="seconds Trakt stays down (default 10)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after (s)")
    args = parser.parse_args()
    print("command:", shlex.join([".venv/bin/python", "-m", "bench.backlog_bench", *sys.argv[1:]]))

    with tempfile.TemporaryDirectory(prefix="backlog-") as tmp, FakeTrakt() as fake:
        now = time.time()
        ended: dict[tuple[str, int], float] = {}
        home = Home.create(Path(tmp) / "home", fake.url)
        log_in(fake, home)
        conn = open_db(home.db_file)
        try:
            outbox = Outbox(conn, SystemClock())
            for n in range(args.items):
                movie = fake.add_movie(f"Backlog Film {n}", 1950 + n % 70)
                item = TraktItem(MediaType.MOVIE, Ids(trakt=movie.ids.trakt), title=movie.title)
                at = now - SPREAD + n * SPREAD / args.items
                outbox.enqueue(
                    Scrobble(ScrobbleVerb.STOP, f"play-{n}", item, 95.0, watched=True), at=at
                )
                ended[item_key(movie)] = at
        finally:
            conn.close()

        fake.set_outage(True)
        with Daemon(home) as daemon:
            daemon.wait_for_log("ready", timeout=20)
            daemon.wait_until(lambda: len(fake.requests()) >= 1, timeout=30)
            time.sleep(args.outage)  # the outage lasts, whatever the daemon does meanwhile
            fake.set_outage(False)
            back = time.monotonic()
            daemon.wait_until(lambda: queue_counts(home).pending == 0, timeout=args.timeout)
            drained = time.monotonic()
            counts = queue_counts(home)
            assert daemon.terminate() == 0

    requests = fake.requests()
    during = [r for r in requests if r.monotonic < back]
    after = [r for r in requests if r.monotonic >= back]
    posts = [r for r in after if r.method == "POST"]
    history = fake.history()
    plays = Counter(item_key(e.item) for e in history)
    once = all(plays[key] == 1 for key in ended) and len(history) == len(ended)
    off = max(abs(e.watched_at.timestamp() - ended[item_key(e.item)]) for e in history)
    first = after[0].monotonic - back if after else float("nan")

    print(f"queued watches:             {args.items} (ended over the last {SPREAD / 3600:.0f} h)")
    print(
        f"during the {args.outage:g} s outage:     {len(during)} tries "
        f"({sum(r.method == 'POST' for r in during)} POSTs), none answered"
    )
    print(
        f"after the outage:           {len(posts)} POSTs (goal <= {-(-args.items // 100)}), "
        f"{len(after) - len(posts)} GETs (history look-ups)"
    )
    print(f"first request after it:     {first:.1f} s (the sender's backoff)")
    print(f"drained in:                 {drained - back:.1f} s after the outage ended")
    print(
        f"Trakt history:              {len(history)} entries, each watch exactly once: {once}; "
        f"watched_at off by at most {off * 1000:.0f} ms"
    )
    print(f"outbox left:                {counts.pending} pending, {counts.dead} dead")
    if not once or counts.pending or counts.dead:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
