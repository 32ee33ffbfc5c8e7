"""Jellyfin figures: pause/resume -> Trakt latency, live (WebSocket) and by webhook.

Run from the repository root:  .venv/bin/python -m bench.jellyfin_bench [--rounds 30]

- live: the fake Jellyfin pushes its `Sessions` message (a client paused or resumed); timed
  from the moment the server sends it to the fake Trakt receiving the matching /scrobble call;
- webhook: from the moment Emby's webhook POST leaves (the code Jellyfin's plugin posts
  reach too) to the same arrival at Trakt.
Rounds are spaced > 1 s apart (Trakt allows one POST a second). Goal: median <= 50 ms.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx

from tests.daemon import Daemon, Home, free_port
from tests.fake_jellyfin import ALICE, API_KEY, FakeJellyfin, movie
from tests.fake_trakt import FakeTrakt, RecordedRequest
from tests.test_player_jellyfin import emby_hook
from trakt_scrobbled.trakt.auth import Token, TokenStore

SECRET = "bench-jellyfin-secret"  # noqa: S105 - the bench daemon's own, thrown away
RUNTIME = 200.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(label: str, values: list[float]) -> None:
    print(
        f"{label:<28} median {1000 * statistics.median(values):6.1f} ms   "
        f"p95 {1000 * percentile(values, 0.95):6.1f} ms   over {len(values)}"
    )


def rounds(
    fake: FakeTrakt, n: int, act: Callable[[bool, float], float]
) -> tuple[list[float], list[float]]:
    """`act(paused, position)` makes the change and returns when the server sent it."""
    pause: list[float] = []
    resume: list[float] = []
    position = 100.0
    for _ in range(n):
        for paused, sink in ((True, pause), (False, resume)):
            route = "/scrobble/stop" if paused else "/scrobble/start"
            before = len(fake.requests(route))
            time.sleep(1.15)
            position += 0.0 if paused else 1.15
            sent = act(paused, position)
            got = fake.wait_for(partial(_is_post_to, route), count=before + 1)
            sink.append(got.monotonic - sent)
    return pause, resume


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tsbench-jf-"))
    with FakeTrakt() as fake, FakeJellyfin() as jf:
        fake.add_movie("The Matrix", 1999, trakt=481, imdb="tt0133093", tmdb=603)
        home = Home(root / "home")
        port = free_port()
        home.config_file.parent.mkdir(parents=True)
        home.config_file.write_text(
            f'[trakt]\nclient_id = "test-client-id"\nclient_secret = "test-secret"\n'
            f'api_url = "{fake.url}"\n\n[mpv]\nenabled = false\n\n'
            f'[jellyfin]\nenabled = true\nurl = "{jf.url}"\napi_key = "{API_KEY}"\n\n'
            f'[emby]\nenabled = true\nmode = "webhook"\nsecret = "{SECRET}"\nusers = ["alice"]\n\n'
            f"[server]\nport = {port}\n"
        )
        pair = fake.issue_token()
        TokenStore(home.token_file).save(
            Token(pair.access_token, pair.refresh_token, pair.created_at + pair.expires_in)
        )
        with Daemon(home) as daemon:
            daemon.wait_for_log("ready")
            daemon.wait_for_log("following the server")

            # live: one play on the TV, paused and resumed by the client
            jf.play("tv", ALICE, movie(runtime=RUNTIME), 100.0)
            fake.wait_for(lambda r: r.path == "/scrobble/start", timeout=15)

            def live(paused: bool, position: float) -> float:
                (jf.pause if paused else jf.resume)("tv", position)
                return jf.pushed[-1]

            report_pair("live (WebSocket)", *rounds(fake, args.rounds, live))
            jf.stop_playing("tv", 150.0)

            # webhook: Emby Premiere's posts, a play on another device
            client = httpx.Client(timeout=10.0)
            url = f"http://127.0.0.1:{port}/emby/{SECRET}"
            starts = len(fake.requests("/scrobble/start"))
            client.post(url, json=emby_hook("playback.start", 100.0)).raise_for_status()
            fake.wait_for(lambda r: r.path == "/scrobble/start", count=starts + 1, timeout=15)

            def hook(paused: bool, position: float) -> float:
                body = emby_hook("playback.pause" if paused else "playback.unpause", position)
                sent = time.monotonic()
                client.post(url, json=body).raise_for_status()
                return sent

            report_pair("webhook (Emby)", *rounds(fake, args.rounds, hook))
            client.close()
            daemon.terminate()


def report_pair(label: str, pause: list[float], resume: list[float]) -> None:
    report(f"{label}: pause -> Trakt", pause)
    report(f"{label}: resume -> Trakt", resume)


def _is_post_to(route: str, request: RecordedRequest) -> bool:
    return request.path == route


if __name__ == "__main__":
    main()
