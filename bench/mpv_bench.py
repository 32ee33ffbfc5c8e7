"""mpv figures: pause/resume latency, attach time, and the daemon's cost while idle and playing.

Run from the repository root:  .venv/bin/python -m bench.mpv_bench [--rounds 50] [--window 60]

- latency: time from sending mpv `pause` (or resuming, or an isolated seek) to the fake Trakt
  receiving the matching /scrobble call, over ROUNDS of each, spaced > 1 s (Trakt's limit);
- play from 0: ROUNDS plays of an already identified (cached) file from its start: the time from
  the daemon's "identified" log line to the fake receiving /scrobble/start, and its progress;
- a burst of 10 seeks in 2 s: how many starts reach Trakt, whether the last carries the final
  position; and, over the whole run, POSTs that came less than 1 s apart (spacing violations);
- attach: time from an mpv IPC socket appearing to the daemon being connected to it;
- cost: the daemon's CPU share, peak RSS and voluntary context switches (all its threads) per
  minute over WINDOW seconds each: no player, one idle mpv connected, one mpv playing;
- the listener: peak RSS after it served 100 `GET /status` and 100 Plex webhooks (each with a
  300 KB thumbnail, as Plex sends them).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

from tests.daemon import Daemon, Home, free_port
from tests.fake_trakt import FakeTrakt, RecordedRequest
from tests.realplayers import MEDIA_SECONDS, MpvLauncher, MpvProcess, make_media
from trakt_scrobbled.trakt.auth import Token, TokenStore

TICKS = os.sysconf("SC_CLK_TCK")


def proc_cost(pid: int) -> tuple[float, int, int]:
    """(CPU seconds, peak RSS bytes, voluntary context switches over all threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    switches = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    switches += int(line.split()[1])
        except FileNotFoundError:
            continue
    return cpu, peak, switches


def per_thread_switches(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    out[f"{name}/{task.name}"] = int(line.split()[1])
        except FileNotFoundError:
            continue
    return out


def measure(pid: int, window: float, label: str) -> None:
    cpu0, _, sw0 = proc_cost(pid)
    threads0 = per_thread_switches(pid)
    t0 = time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - t0
    cpu1, peak, sw1 = proc_cost(pid)
    threads1 = per_thread_switches(pid)
    busiest = sorted(((threads1[k] - threads0.get(k, 0), k) for k in threads1), reverse=True)[:3]
    print(
        f"{label:<22} CPU {100 * (cpu1 - cpu0) / elapsed:6.3f} % of a core   "
        f"peak RSS {peak / 2**20:5.1f} MB   "
        f"wakeups {60 * (sw1 - sw0) / elapsed:6.1f}/min   "
        f"(busiest threads: {', '.join(f'{k}={n}' for n, k in busiest)})"
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--window", type=float, default=60.0)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="tsbench-"))
    sock_dir = Path(tempfile.mkdtemp(prefix="tsb-", dir="/tmp"))
    media = make_media(root)
    with FakeTrakt() as fake:
        fake.add_movie("The Matrix", 1999, trakt=481, imdb="tt0133093")
        home = Home(root / "home")
        port = free_port()
        home.config_file.parent.mkdir(parents=True)
        home.config_file.write_text(
            f'[trakt]\nclient_id = "test-client-id"\nclient_secret = "test-secret"\n'
            f'api_url = "{fake.url}"\n\n[mpv]\nsockets = ["{sock_dir}/*.sock"]\n\n'
            f'[plex]\nenabled = true\nsecret = "{PLEX_SECRET}"\n\n'
            f"[server]\nport = {port}\n"
        )
        pair = fake.issue_token()
        TokenStore(home.token_file).save(
            Token(pair.access_token, pair.refresh_token, pair.created_at + pair.expires_in)
        )
        launcher = MpvLauncher(sock_dir)
        with Daemon(home) as daemon:
            daemon.wait_for_log("ready")
            time.sleep(2.0)
            print(f"daemon pid {daemon.pid}; windows of {args.window:g} s")
            measure(daemon.pid, args.window, "idle, no player")

            attach: list[float] = []
            for n in range(5):
                since = daemon.mark()
                path = sock_dir / f"attach{n}.sock"
                seen: list[float] = []
                watcher = threading.Thread(target=_watch_for, args=(path, seen))
                watcher.start()
                mpv = launcher.start(socket_path=path)
                watcher.join()
                daemon.wait_for_log(rf"connected to .*attach{n}\.sock", since=since)
                # The daemon logs right after connecting; its log stamp is the attach time.
                attach.append(_log_time_since(daemon.stderr(), since, path.name) - seen[0])
                if n < 4:
                    mpv.close()
            print(
                "attach after the socket appears: "
                f"median {1000 * statistics.median(attach):.0f} ms, "
                f"max {1000 * max(attach):.0f} ms over {len(attach)}"
            )
            time.sleep(2.0)
            measure(daemon.pid, args.window, "one idle mpv connected")

            mpv.control.loadfile(media.movie)
            mpv.control.set("loop-file", "inf")
            fake.wait_for(lambda r: r.path == "/scrobble/start", timeout=15)
            measure(daemon.pid, args.window, "one mpv playing")

            pause_lat: list[float] = []
            resume_lat: list[float] = []
            for n in range(args.rounds):
                for paused, sink in ((True, pause_lat), (False, resume_lat)):
                    route = "/scrobble/stop" if paused else "/scrobble/start"
                    before = len(fake.requests(route))
                    time.sleep(1.15)  # Trakt allows one POST a second
                    t0 = time.monotonic()
                    mpv.control.set("pause", paused)
                    got = fake.wait_for(partial(_is_post_to, route), count=before + 1)
                    sink.append(got.monotonic - t0)
                del n
            seek_lat: list[float] = []
            for n in range(args.rounds):
                before = len(fake.requests("/scrobble/start"))
                time.sleep(1.15)
                t0 = time.monotonic()
                mpv.control.seek(20.0 if n % 2 else 100.0)  # an isolated seek
                got = fake.wait_for(partial(_is_post_to, "/scrobble/start"), count=before + 1)
                seek_lat.append(got.monotonic - t0)
            for name, values in (("pause", pause_lat), ("resume", resume_lat), ("seek", seek_lat)):
                print(
                    f"{name} -> Trakt: median {1000 * statistics.median(values):.1f} ms, "
                    f"p95 {1000 * percentile(values, 0.95):.1f} ms over {len(values)}"
                )
            seek_burst(fake, mpv)
            play_from_zero(fake, daemon, mpv, media.movie, args.rounds)
            spacing(fake)
            listener_traffic(daemon.pid, port)
            launcher.close()
            daemon.terminate()


PLEX_SECRET = "bench-plex-secret"  # noqa: S105 - the bench daemon's own, thrown away


def seek_burst(fake: FakeTrakt, mpv: MpvProcess) -> None:
    """10 seeks in 2 s: the outbox keeps only the newest unsent start, POSTs go 1 s apart."""
    time.sleep(1.15)
    t0 = time.monotonic()
    targets = [10.0 * (n + 1) for n in range(10)]  # the last one: 100 s of 150
    for target in targets:
        mpv.control.seek(target)
        time.sleep(0.2)
    time.sleep(2.5)  # whatever the burst causes has arrived
    starts = [r for r in fake.requests("/scrobble/start") if r.monotonic >= t0]
    final = 100 * targets[-1] / MEDIA_SECONDS
    last = starts[-1].json["progress"] if starts else None
    right = last is not None and abs(last - final) < 3.0
    print(
        f"burst of 10 seeks in 2 s: {len(starts)} starts reached Trakt; the last at "
        f"{last}% ({'the final position' if right else f'NOT the final {final:.1f}%'})"
    )


def play_from_zero(
    fake: FakeTrakt, daemon: Daemon, mpv: MpvProcess, movie: Path, rounds: int
) -> None:
    """A file identified before (cached) played from 0: its start, at once, under 1 %."""
    lat: list[float] = []
    progress: list[float] = []
    for _ in range(rounds):
        stops = len(fake.requests("/scrobble/stop"))
        mpv.control.stop()
        fake.wait_for(partial(_is_post_to, "/scrobble/stop"), count=stops + 1)
        time.sleep(1.15)
        since = daemon.mark()
        before = len(fake.requests("/scrobble/start"))
        mpv.control.loadfile(movie)
        got = fake.wait_for(partial(_is_post_to, "/scrobble/start"), count=before + 1)
        identified = _log_time_since(daemon.stderr(), since, "identified as")
        lat.append(got.wall - identified)
        progress.append(got.json["progress"])
    print(
        f"play from 0 -> Trakt start after identification (cached): "
        f"median {1000 * statistics.median(lat):.1f} ms, max {1000 * max(lat):.1f} ms over "
        f"{len(lat)} (log stamps have 1 ms steps); progress sent: max {max(progress):.2f}%"
    )


def spacing(fake: FakeTrakt) -> None:
    """POSTs to Trakt that arrived less than 1 s after the previous one, over the whole run."""
    posts = [r for r in fake.requests() if r.method == "POST" and r.path != "/oauth/token"]
    gaps = [b.monotonic - a.monotonic for a, b in itertools.pairwise(posts)]
    violations = sum(1 for g in gaps if g < 1.0)
    refused = sum(1 for r in posts if r.status == 429)
    print(
        f"POST spacing: {len(posts)} POSTs, {violations} less than 1 s apart, {refused} answered "
        f"429; smallest gap {min(gaps):.3f} s"
    )


def listener_traffic(pid: int, port: int) -> None:
    """Serve status and webhook requests as `status` and Plex make them; report peak RSS."""
    import httpx

    from tests import plex_payloads as px

    body, ctype = px.multipart(px.webhook("library.new", px.movie()), thumb=px.jpeg(300_000))
    base = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    with httpx.Client(timeout=10.0) as client:
        for _ in range(100):
            client.get(f"{base}/status").raise_for_status()
            client.post(
                f"{base}/plex/{PLEX_SECRET}", content=body, headers={"Content-Type": ctype}
            ).raise_for_status()
    elapsed = time.monotonic() - t0
    _, peak, _ = proc_cost(pid)
    print(
        f"listener: 100 status + 100 webhooks ({len(body) // 1024} KB each) in {elapsed:.2f} s; "
        f"peak RSS {peak / 2**20:5.1f} MB"
    )


def _is_post_to(route: str, request: RecordedRequest) -> bool:
    return request.path == route


def _watch_for(path: Path, seen: list[float]) -> None:
    """Note the wall time `path` appears, to the half millisecond."""
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.0005)
    seen.append(time.time())


def _log_time_since(text: str, since: int, needle: str) -> float:
    """The wall time of the first log line after `since` that holds `needle`."""
    from datetime import datetime

    for line in text[since:].splitlines():
        if needle in line:
            stamp = line[:23]
            return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
    raise ValueError(needle)


if __name__ == "__main__":
    main()
