"""Plex live mode figures: pause -> Trakt latency, reconnect time, the daemon's peak RSS.

Run from the repository root:  .venv/bin/python -m bench.plex_live_bench [--rounds 30]

- latency: from the fake Plex server sending a `PlaySessionStateNotification` (paused, or
  playing again) to the fake Trakt receiving the matching /scrobble call, over ROUNDS pauses and
  ROUNDS resumes spaced > 1 s (Trakt's limit); the daemon follows the server in live mode;
- reconnect: from every notification socket dropping to the daemon following the server again,
  over RECONNECTS drops, each followed by a pause that must reach Trakt as a stop of the same
  play (no new /scrobble/start: the play goes on, it is not restarted);
- the daemon's peak RSS (VmHWM) at the end.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

from bench.mpv_bench import percentile, proc_cost
from tests.daemon import Daemon, Home, free_port
from tests.fake_plex import OWNER_TOKEN, FakePlex
from tests.fake_trakt import FakeTrakt, RecordedRequest
from trakt_scrobbled.trakt.auth import Token, TokenStore

DURATION_MS = 8_160_000


def _is_post_to(route: str, request: RecordedRequest) -> bool:
    return request.method == "POST" and request.path == route


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--reconnects", type=int, default=10)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="tsbench-plex-"))
    with FakeTrakt() as fake, FakePlex() as plex:
        fake.add_movie("The Matrix", 1999, trakt=481, imdb="tt0133093", tmdb=603)
        home = Home(root / "home")
        home.config_file.parent.mkdir(parents=True)
        home.config_file.write_text(
            f'[trakt]\nclient_id = "test-client-id"\nclient_secret = "test-secret"\n'
            f'api_url = "{fake.url}"\n\n[mpv]\nenabled = false\n\n'
            f'[plex]\nenabled = true\nmode = "live"\nurl = "{plex.url}"\ntoken = "{OWNER_TOKEN}"\n'
            f"\n[server]\nport = {free_port()}\n"
        )
        pair = fake.issue_token()
        TokenStore(home.token_file).save(
            Token(pair.access_token, pair.refresh_token, pair.created_at + pair.expires_in)
        )
        with Daemon(home) as daemon:
            daemon.wait_for_log("following the Plex server at .* live", timeout=20)
            key = plex.play("1001", offset_ms=200_000)
            fake.wait_for(partial(_is_post_to, "/scrobble/start"), timeout=15)
            offset = 200_000

            pause_lat: list[float] = []
            resume_lat: list[float] = []
            for _ in range(args.rounds):
                for paused, sink in ((True, pause_lat), (False, resume_lat)):
                    route = "/scrobble/stop" if paused else "/scrobble/start"
                    before = len(fake.requests(route))
                    time.sleep(1.15)  # Trakt allows one POST a second
                    offset += 1_000
                    t0 = time.monotonic()
                    (plex.pause if paused else plex.resume)(key, offset)
                    got = fake.wait_for(partial(_is_post_to, route), count=before + 1)
                    sink.append(got.monotonic - t0)
            for name, values in (("pause", pause_lat), ("resume", resume_lat)):
                print(
                    f"{name} notification -> Trakt: median {1000 * statistics.median(values):.1f}"
                    f" ms, p95 {1000 * percentile(values, 0.95):.1f} ms over {len(values)}"
                )

            back: list[float] = []
            starts = len(fake.requests("/scrobble/start"))
            continued = 0
            for _ in range(args.reconnects):
                connects = plex.connects
                t0 = time.monotonic()
                plex.drop_websockets()
                while plex.connects == connects or plex.socket_count() == 0:
                    if time.monotonic() - t0 > 30:
                        raise SystemExit("the daemon did not reconnect within 30 s")
                    time.sleep(0.005)
                back.append(time.monotonic() - t0)
                stops = len(fake.requests("/scrobble/stop"))
                time.sleep(1.15)
                offset += 1_000
                plex.pause(key, offset)
                fake.wait_for(partial(_is_post_to, "/scrobble/stop"), count=stops + 1)
                time.sleep(1.15)
                plex.resume(key, offset)
                fake.wait_for(partial(_is_post_to, "/scrobble/start"), count=starts + 1)
                starts += 1
                continued += 1
            print(
                f"reconnect after a drop: median {1000 * statistics.median(back):.0f} ms, "
                f"max {1000 * max(back):.0f} ms over {len(back)}; the play went on after "
                f"{continued}/{len(back)} (one /scrobble/start per resume, none for a reconnect)"
            )
            _, peak, _ = proc_cost(daemon.pid)
            print(f"daemon peak RSS {peak / 2**20:.1f} MB (live mode, one websocket)")
            plex.stop_session(key, DURATION_MS * 95 // 100)
            daemon.terminate()


if __name__ == "__main__":
    main()
