"""MPRIS figures with real VLC on a private session bus: pause/resume latency to Trakt, the
daemon's wake-ups with two MPRIS players open and paused, and its peak RSS with dbus-fast loaded.

Run from the repository root:  .venv/bin/python -m bench.mpris_bench [--rounds 30] [--window 60]

- latency: time from the MPRIS `Pause` (or `Play`) call to VLC to the fake Trakt receiving the
  matching /scrobble call, over ROUNDS pauses and ROUNDS resumes, spaced > 1 s (Trakt's limit);
- cost: the daemon's CPU share, peak RSS and voluntary context switches (all its threads) per
  minute over WINDOW seconds each: no player; VLC and mpv (mpv-mpris) open and paused; VLC
  playing. Goals (issue #20): pause -> Trakt median <= 20 ms; <= 6 wake-ups a minute with two
  players paused; peak RSS <= 45 MB.

Needs what the tests need: dbus-daemon, vlc-bin + vlc-plugin-base, mpv + mpv-mpris, ffmpeg
(`scripts/system-deps`). Under root VLC runs as the user `trakt-test`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.mpv_bench import measure, percentile
from tests.daemon import Daemon, Home, free_port
from tests.fake_trakt import FakeTrakt
from tests.mprisbus import MPV_MPRIS_PLUGINS, VlcLauncher, bus_client, start_bus, stop_bus
from tests.realplayers import MpvLauncher, make_media
from trakt_scrobbled.trakt.auth import Token, TokenStore


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--window", type=float, default=60.0)
    args = parser.parse_args()

    bus = start_bus()
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = bus.address  # the daemon and mpv inherit it
    root = Path(tempfile.mkdtemp(prefix="tsbench-"))
    sock_dir = Path(tempfile.mkdtemp(prefix="tsb-", dir="/tmp"))
    vlcs = VlcLauncher(bus)
    mpvs = MpvLauncher(sock_dir)
    try:
        media = vlcs.media(make_media(root))
        plugin = next(p for p in MPV_MPRIS_PLUGINS if Path(p).exists())  # noqa: ASYNC240
        with FakeTrakt() as fake:
            fake.add_movie("The Matrix", 1999, trakt=481, imdb="tt0133093")
            home = Home(root / "home")
            home.config_file.parent.mkdir(parents=True)
            home.config_file.write_text(
                f'[trakt]\nclient_id = "test-client-id"\nclient_secret = "test-secret"\n'
                f'api_url = "{fake.url}"\n\n[mpv]\nenabled = false\n\n'
                f"[mpris]\nenabled = true\n\n[server]\nport = {free_port()}\n"
            )
            pair = fake.issue_token()
            TokenStore(home.token_file).save(
                Token(pair.access_token, pair.refresh_token, pair.created_at + pair.expires_in)
            )
            with Daemon(home) as daemon:
                daemon.wait_for_log("mpris: watching the session bus")
                await asyncio.sleep(2.0)
                print(f"daemon pid {daemon.pid}; windows of {args.window:g} s")
                await asyncio.to_thread(measure, daemon.pid, args.window, "idle, no player")

                async with bus_client(bus) as client:
                    vlc = vlcs.start(media.movie)
                    name = await vlc.ready(client)
                    await client.wait_status(name, "Playing")
                    await fake.wait_for_async(lambda r: r.path == "/scrobble/start", timeout=15)
                    mpv = mpvs.start(f"--script={plugin}", str(media.episode))
                    daemon.wait_for_log(r"following mpris:mpv")
                    await asyncio.sleep(1.0)
                    mpv.control.pause()
                    await client.player(name, "Pause")
                    await client.wait_status(name, "Paused")
                    await asyncio.sleep(2.0)
                    await asyncio.to_thread(measure, daemon.pid, args.window, "VLC + mpv paused")

                    await client.player(name, "Play")
                    await client.wait_status(name, "Playing")
                    await asyncio.to_thread(measure, daemon.pid, args.window, "VLC playing")

                    pause_lat: list[float] = []
                    resume_lat: list[float] = []
                    for _ in range(args.rounds):
                        for member, route, sink in (
                            ("Pause", "/scrobble/stop", pause_lat),
                            ("Play", "/scrobble/start", resume_lat),
                        ):
                            before = len(fake.requests(route))
                            await asyncio.sleep(1.15)  # Trakt allows one POST a second
                            t0 = time.monotonic()
                            await client.player(name, member)
                            got = await fake.wait_for_async(
                                lambda r, route=route: r.path == route,  # type: ignore[misc]
                                count=before + 1,
                                timeout=10,
                            )
                            sink.append(got.monotonic - t0)
                    for label, values in (("pause", pause_lat), ("resume", resume_lat)):
                        print(
                            f"{label} -> Trakt: median {1000 * statistics.median(values):.1f} ms, "
                            f"p95 {1000 * percentile(values, 0.95):.1f} ms over {len(values)}"
                        )
                daemon.terminate()
    finally:
        vlcs.close()
        mpvs.close()
        stop_bus(bus)


if __name__ == "__main__":
    asyncio.run(main())
