"""Household figures from the real daemon: accounts do not wait for each other.

Run from the repository root (needs mpv and ffmpeg; Trakt's real 1 s POST spacing throughout):

    .venv/bin/python -m bench.household_bench                        # ~10 min: 20 rounds, 500 rows
    .venv/bin/python -m bench.household_bench --rounds 10 --rows 30  # ~2 min
    .venv/bin/python -m bench.household_bench --rows 30 --alone      # + one lane alone, to compare
    .venv/bin/python -m bench.household_bench --only drain --rows 30

`python -m trakt_scrobbled run` runs as a subprocess in a private home (tests/daemon.py) with two
household accounts, `[accounts.alice]` and `[accounts.bob]`, each routed by an `mpv = [...]` socket
pattern and logged in with its own token file (`$STATE/token-NAME.json`); the fake Trakt
(tests/fake_trakt) knows each user by token and keeps Trakt's limit of one POST a second per user.
Nothing of the daemon is patched: its lanes, senders and POST spacing are its own.

1. latency: alice is parked, her access token expired at Trakt and her refresh refused (401),
   so her lane needs a login while her ROWS_PARKED scrobbles stay queued; bob plays a real mpv
   whose socket routes to him. Over ROUNDS rounds spaced > 1 s: bob's pause -> Trakt and resume
   -> Trakt latency (from sending mpv `pause` to the fake recording the /scrobble call), median
   and p95 (goal: median <= 10 ms); and no request under alice's token reaches Trakt meanwhile.
2. drain: the daemon stopped, ROWS distinct queued pauses per account are put in the state
   database (distinct plays, so that none coalesce), then the daemon starts with both logged in.
   Per lane: its time to drain, its POST gaps at the fake (the smallest must be >= 1 s), and the
   time for both against one lane's floor of (ROWS - 1) x 1 s (goal: about the time of one).
   With --alone, bob's backlog alone is drained afterwards the same way, for comparison.

The figures depend on the machine's load (the daemon, mpv, the fake and this script share its
cores): say how many cores it had and what else ran when quoting them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from tests.daemon import Daemon, Home, run_cli
from tests.fake_trakt import FakeTrakt, RecordedRequest
from tests.realplayers import MediaFiles, MpvLauncher, make_media
from trakt_scrobbled.clock import SystemClock
from trakt_scrobbled.events import Ids, MediaType, Scrobble, ScrobbleVerb, TraktItem
from trakt_scrobbled.outbox import Outbox
from trakt_scrobbled.store import open_db
from trakt_scrobbled.trakt.auth import Token, TokenStore

ALICE, BOB = "alice", "bob"
ROWS_PARKED = 20
"""Alice's scrobbles queued while she is parked."""
POST_SPACING = 1.0
"""Trakt's AUTHED_API_POST_LIMIT, per user: the fake's and the daemon's own."""
ROUND_GAP = 1.15
"""Bob's rounds start this long after his previous POST arrived: above Trakt's 1 s."""
MATRIX = TraktItem(MediaType.MOVIE, Ids(trakt=481), title="The Matrix")


@dataclass(frozen=True, slots=True)
class Lane:
    """One account's POSTs in a drain, as the fake recorded them."""

    name: str
    posts: list[RecordedRequest]

    @property
    def accepted(self) -> int:
        return sum(1 for r in self.posts if r.status == 201)

    @property
    def refused(self) -> int:
        return sum(1 for r in self.posts if r.status != 201)

    @property
    def first(self) -> float:
        return self.posts[0].monotonic

    @property
    def last(self) -> float:
        return self.posts[-1].monotonic

    @property
    def gaps(self) -> list[float]:
        return [b.monotonic - a.monotonic for a, b in itertools.pairwise(self.posts)]


# --- the household's home ---------------------------------------------------------------------


def make_home(root: Path, fake: FakeTrakt, sock_dir: Path) -> Home:
    """mpv sockets `alice*.sock` route to alice, `bob*.sock` to bob; no default account."""
    players = f'[mpv]\nenabled = true\nsockets = ["{sock_dir}/*.sock"]\n'
    accounts = "".join(
        f'\n[accounts.{name}]\nmpv = ["{sock_dir}/{name}*.sock"]\n' for name in (ALICE, BOB)
    )
    return Home.create(root, fake.url, players=players, extra=accounts)


def log_in_as(fake: FakeTrakt, home: Home, account: str) -> None:
    """The account's token file, as `trakt-scrobbled login --account NAME` leaves it."""
    pair = fake.issue_token(account)
    home.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    TokenStore(home.state_dir / f"token-{account}.json").save(
        Token(pair.access_token, pair.refresh_token, pair.created_at + pair.expires_in)
    )


def seed(home: Home, account: str, rows: int, prefix: str) -> None:
    """`rows` queued pauses of distinct plays in `account`'s lane, as an earlier run left them."""
    home.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    conn = open_db(home.db_file)
    try:
        outbox = Outbox(conn, SystemClock(), account=account)
        for n in range(rows):
            outbox.enqueue(Scrobble(ScrobbleVerb.STOP, f"{prefix}-{n}", MATRIX, 40.0))
    finally:
        conn.close()


def pending(home: Home, account: str) -> int:
    conn = open_db(home.db_file)
    try:
        return Outbox(conn, SystemClock(), account=account).counts().pending
    finally:
        conn.close()


def drop_rows(home: Home, account: str) -> int:
    """Everything left in `account`'s lane, dropped as `queue drop` would."""
    conn = open_db(home.db_file)
    try:
        outbox = Outbox(conn, SystemClock(), account=account)
        return sum(outbox.drop(row.id) for row in outbox.rows())
    finally:
        conn.close()


def account_status(home: Home, account: str) -> dict[str, object]:
    result = run_cli(home, "status", "--json")
    if result.returncode != 0:
        raise AssertionError(f"status --json failed: {result.stderr}")
    accounts = json.loads(result.stdout)["accounts"]
    found: dict[str, object] = next(a for a in accounts if a["name"] == account)
    return found


def until(condition: Callable[[], bool], timeout: float, what: str, daemon: Daemon) -> None:
    """Bounded wait on state nothing signals to us (the daemon's database); fails with why."""
    try:
        daemon.wait_until(condition, timeout)
    except AssertionError as err:
        raise AssertionError(f"{what}: {err}") from None


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{1000 * seconds:.1f} ms"


# --- 1. one account parked, the other playing -------------------------------------------------


def latency(fake: FakeTrakt, home: Home, sock_dir: Path, media: MediaFiles, rounds: int) -> bool:
    """Alice parked with rows queued, bob pausing and resuming a real mpv; True: goals met."""
    log_in_as(fake, home, ALICE)
    log_in_as(fake, home, BOB)
    seed(home, ALICE, ROWS_PARKED, "parked")
    fake.expire_access_tokens(ALICE)
    # The refresh carries no user's token (the refresh token is in the body): refused for
    # anyone, which only alice meets (bob's access token is good for days).
    fake.fail_next(10**6, 401, path_prefix="/oauth/token")
    launcher = MpvLauncher(sock_dir)
    try:
        with Daemon(home, name="latency") as daemon:
            daemon.wait_for_log("ready: watching", 30)
            daemon.wait_for_log(r"account alice: Trakt login needed", 30)
            parked_at = time.monotonic()
            alice_before = [r for r in fake.requests() if r.user == ALICE]
            alice = account_status(home, ALICE)
            queue = alice["queue"]
            assert isinstance(queue, dict)
            print(
                f"alice parked: logged_in={alice['logged_in']}, sender {alice['sender']!r}, "
                f"{queue['pending']} row(s) kept; {len(alice_before)} request(s) under her "
                f"token before (answered "
                f"{', '.join(str(r.status) for r in alice_before) or 'nothing'})"
            )

            mark = daemon.mark()
            mpv = launcher.start(socket_path=sock_dir / "bob.sock")
            daemon.wait_for_log(r"mpv: connected to .*bob\.sock", 15, since=mark)
            mpv.control.loadfile(media.movie)
            mpv.control.set("loop-file", "inf")
            first = fake.wait_for(lambda r: _bobs("/scrobble/start", r), timeout=30)
            print(f"bob's mpv ({mpv.socket_path.name}) playing, its start reached Trakt as bob")

            pause_lat: list[float] = []
            resume_lat: list[float] = []
            last = first.monotonic
            for _ in range(rounds):
                for paused, sink in ((True, pause_lat), (False, resume_lat)):
                    route = "/scrobble/stop" if paused else "/scrobble/start"
                    before = sum(1 for r in fake.requests(route) if _bobs(route, r))
                    # Pacing, not synchronisation: Trakt allows bob one POST a second.
                    time.sleep(max(0.0, last + ROUND_GAP - time.monotonic()))
                    t0 = time.monotonic()
                    mpv.control.set("pause", paused)
                    got = fake.wait_for(partial(_bobs, route), timeout=15, count=before + 1)
                    sink.append(got.monotonic - t0)
                    last = got.monotonic

            mpv.control.stop()
            fake.wait_for(lambda r: _bobs("/scrobble/stop", r), timeout=15, count=rounds + 1)
            until(lambda: pending(home, BOB) == 0, 15, "bob's queue did not empty", daemon)
            during = [r for r in fake.requests() if r.user == ALICE and r.monotonic >= parked_at]
            polls = sum(1 for r in fake.requests("/oauth/device/") if r.monotonic >= parked_at)
            alice_left = pending(home, ALICE)
            window = time.monotonic() - parked_at
            code = daemon.terminate(30)
    finally:
        launcher.close()
        for stale in sock_dir.glob("*.sock"):  # killed mpv leaves its socket file behind
            stale.unlink()
        fake.clear_faults()

    print(f"bob, over {rounds} rounds spaced >= {ROUND_GAP:g} s, while alice stayed parked:")
    for name, values in (("pause", pause_lat), ("resume", resume_lat)):
        print(
            f"  {name:<6} -> Trakt: median {ms(statistics.median(values))}, "
            f"p95 {ms(percentile(values, 0.95))}, max {ms(max(values))} over {len(values)}"
        )
    print(
        f"  alice during those {window:.0f} s: {len(during)} request(s) under her token "
        f"(goal: 0); {alice_left} of her {ROWS_PARKED} row(s) still queued; her lane's "
        f"device-code login polled {polls} time(s) (no token)"
    )
    print(f"  the daemon exited {code} on SIGTERM")
    ok = statistics.median(pause_lat) <= 0.010 and not during and alice_left == ROWS_PARKED
    print(f"  latency goals {'met' if ok else 'NOT met'} (pause median <= 10 ms, alice silent)")
    return ok


def _bobs(route: str, request: RecordedRequest) -> bool:
    return request.path == route and request.user == BOB and request.status == 201


# --- 2. backlogs drained in parallel ----------------------------------------------------------


def drain(fake: FakeTrakt, home: Home, names: Sequence[str], rows: int, label: str) -> list[Lane]:
    """`rows` pauses queued for each of `names` with the daemon stopped, then drained by it."""
    for name in (ALICE, BOB):
        drop_rows(home, name)
    for name in names:
        log_in_as(fake, home, name)
        seed(home, name, rows, f"{label}-{name}")
    t_seeded = time.monotonic()
    print(f"{label}: {rows} queued pauses for {' and '.join(names)}; starting the daemon")
    with Daemon(home, name=f"drain-{label}") as daemon:
        t_start = time.monotonic()

        def accepted() -> dict[str, int]:
            counts = dict.fromkeys(names, 0)
            for r in fake.requests("/scrobble/stop"):
                if r.user in counts and r.monotonic >= t_seeded and r.status == 201:
                    counts[r.user] += 1
            return counts

        deadline = t_start + rows * POST_SPACING * 1.5 + 60
        said = t_start
        while min(accepted().values()) < rows:
            if not daemon.running:
                raise AssertionError(f"the daemon exited ({daemon.returncode}) while draining")
            if time.monotonic() > deadline:
                raise AssertionError(f"{label}: not drained in time: {accepted()}")
            if time.monotonic() - said >= 60:
                said = time.monotonic()
                done = ", ".join(f"{n} {c}/{rows}" for n, c in accepted().items())
                print(f"  ... {said - t_start:.0f} s: {done}")
            time.sleep(0.2)  # polled, bounded by `deadline`: a drain takes minutes
        until(
            lambda: all(pending(home, n) == 0 for n in names),
            30,
            "the queue did not empty once Trakt had everything",
            daemon,
        )
        code = daemon.terminate(30)
    lanes = [
        Lane(
            name,
            [
                r
                for r in fake.requests()
                if r.user == name and r.method == "POST" and r.monotonic >= t_seeded
            ],
        )
        for name in names
    ]
    floor = (rows - 1) * POST_SPACING
    for lane in lanes:
        gaps = lane.gaps
        print(
            f"  {lane.name}: {lane.accepted} accepted, {lane.refused} refused; drained in "
            f"{lane.last - lane.first:.2f} s from its first POST ({lane.last - t_start:.2f} s "
            f"from the daemon's start); gaps: smallest {min(gaps):.3f} s "
            f"(goal >= {POST_SPACING:g} s), median {statistics.median(gaps):.3f} s, "
            f"largest {max(gaps):.3f} s"
        )
    total = max(lane.last for lane in lanes) - min(lane.first for lane in lanes)
    what = "together" if len(lanes) > 1 else "alone"
    print(
        f"  {what}: {total:.2f} s from the first POST to the last "
        f"({max(lane.last for lane in lanes) - t_start:.2f} s from the daemon's start); "
        f"one lane's floor (ROWS - 1) x {POST_SPACING:g} s = {floor:.0f} s "
        f"(ratio {total / floor:.3f}"
        + ("; one lane after the other would be ~2)" if len(lanes) > 1 else ")")
    )
    if len(lanes) > 1:
        overlap = min(lane.last for lane in lanes) - max(lane.first for lane in lanes)
        print(f"  the lanes sent side by side for {overlap:.2f} s of those {total:.2f} s")
    print(f"  the daemon exited {code} on SIGTERM")
    return lanes


def drain_ok(lanes: Sequence[Lane], rows: int) -> bool:
    floor = (rows - 1) * POST_SPACING
    total = max(lane.last for lane in lanes) - min(lane.first for lane in lanes)
    spaced = all(min(lane.gaps, default=POST_SPACING) >= POST_SPACING for lane in lanes)
    complete = all(lane.accepted == rows for lane in lanes)
    # "About the time of one": within 10 % (and 5 s) of one lane's floor, not twice it.
    return spaced and complete and total <= max(floor * 1.1, floor + 5)


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="bob's pause/resume rounds (20)")
    parser.add_argument("--rows", type=int, default=500, help="backlog per account (500)")
    parser.add_argument(
        "--alone", action="store_true", help="also drain bob's backlog alone, to compare"
    )
    parser.add_argument("--only", choices=("latency", "drain"), help="run one part only")
    parser.add_argument(
        "--keep", action="store_true", help="keep the daemon's home and logs even when all is well"
    )
    args = parser.parse_args()
    if args.rows < 2 or args.rounds < 1:
        parser.error("--rows must be at least 2 and --rounds at least 1")

    root = Path(tempfile.mkdtemp(prefix="tshh-"))
    sock_dir = Path(tempfile.mkdtemp(prefix="tshs-", dir="/tmp"))  # AF_UNIX paths are short
    print(f"household bench: {os.cpu_count()} CPU(s), load {os.getloadavg()[0]:.2f}; in {root}")
    ok = True
    try:
        with FakeTrakt(post_interval=POST_SPACING) as fake:
            fake.add_movie("The Matrix", 1999, trakt=481, imdb="tt0133093")
            for name in (ALICE, BOB):
                fake.add_user(name)
            home = make_home(root / "home", fake, sock_dir)
            if args.only in (None, "latency"):
                print("\n1. latency: alice parked (401, refresh refused), bob playing mpv")
                ok &= latency(fake, home, sock_dir, make_media(root), args.rounds)
            if args.only in (None, "drain"):
                print(f"\n2. drain: {args.rows} rows per account, Trakt's 1 s spacing per user")
                both = drain(fake, home, (ALICE, BOB), args.rows, "both")
                drained = drain_ok(both, args.rows)
                if args.alone:
                    alone = drain(fake, home, (BOB,), args.rows, "alone")
                    drained &= drain_ok(alone, args.rows)
                    t_both = max(x.last for x in both) - min(x.first for x in both)
                    t_alone = alone[0].last - alone[0].first
                    print(
                        f"  both / alone: {t_both:.2f} s / {t_alone:.2f} s = "
                        f"{t_both / t_alone:.3f} (one after the other would be ~2)"
                    )
                print(
                    f"  drain goals {'met' if drained else 'NOT met'} (every gap >= 1 s, all "
                    f"accepted, together within 10 % of one lane's floor)"
                )
                ok &= drained
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)
    if ok and not args.keep:
        shutil.rmtree(root, ignore_errors=True)
        print("\nall goals met")
    else:
        verdict = "all goals met" if ok else "SOME GOALS NOT MET"
        print(f"\n{verdict}; the daemon's logs: {root}/home")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
