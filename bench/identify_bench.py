"""Recognition quality and cost: accuracy per class on tests/recognition_corpus.tsv, parse cost
per name, and the parse worker's memory and lifetime.

Accuracy is measured the way the issue's hidden sets are: `trakt-scrobbled identify --offline
--json PATH...`, run from a scratch working directory (whose name must never become a title).
`--cli` points at another install (e.g. the original code's venv) to compare:

    python -m bench.identify_bench
    python -m bench.identify_bench --cli /work/main/.venv/bin/trakt-scrobbled --no-worker
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.corpus import cases, mismatch

_BATCH = 200


def run_cli(
    cli: list[str], paths: list[str], cwd: Path, env: dict[str, str]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for start in range(0, len(paths), _BATCH):
        batch = paths[start : start + _BATCH]
        proc = subprocess.run(
            [*cli, "identify", "--offline", "--json", *batch],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
        if len(lines) != len(batch):
            raise SystemExit(f"identify answered {len(lines)} lines for {len(batch)} paths: "
                             f"{proc.stderr[-2000:]}")  # fmt: skip
        out += lines
    return out


def accuracy(cli: list[str], show_wrong: bool) -> None:
    all_cases = list(cases())
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        cwd = home / "03-work"  # a folder above the library, with a title-like name
        cwd.mkdir()
        env = {
            **os.environ,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_STATE_HOME": str(home / "state"),
        }
        t0 = time.perf_counter()
        answers = run_cli(cli, [c.path for c in all_cases], cwd, env)
        elapsed = time.perf_counter() - t0
    per: dict[str, list[int]] = {}
    wrong = []
    for case, got in zip(all_cases, answers, strict=True):
        tally = per.setdefault(case.cls, [0, 0])
        tally[1] += 1
        problem = mismatch(case.want, got)
        if problem is None:
            tally[0] += 1
        else:
            wrong.append((case, problem))
    right = sum(a for a, _ in per.values())
    print(f"accuracy of `{' '.join(cli)} identify --offline --json` on {len(all_cases)} names:")
    for cls, (a, b) in sorted(per.items()):
        print(f"  {cls:14} {a:4}/{b:<4} {100 * a / b:6.1f} %")
    print(f"  {'all':14} {right:4}/{len(all_cases):<4} {100 * right / len(all_cases):6.1f} %")
    print(f"  wall time {elapsed:.1f} s for {len(all_cases)} names, "
          f"{1000 * elapsed / len(all_cases):.1f} ms a name (process start included)")  # fmt: skip
    if show_wrong:
        for case, problem in wrong:
            print(f"  WRONG [{case.cls}] {case.path}  ->  {problem}")


def parse_cost() -> None:
    from trakt_scrobbled.identify import parse_path

    paths = [c.path for c in cases()]
    t0 = time.perf_counter()
    parse_path(paths[0])
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for p in paths:
        parse_path(p)
    each = (time.perf_counter() - t0) / len(paths)
    print(f"parse cost in process: first name {1000 * first:.0f} ms (parsers load), then "
          f"{1000 * each:.2f} ms a name")  # fmt: skip


def _rss_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


async def worker_cost(idle: float) -> None:
    import sqlite3

    from trakt_scrobbled.clock import SystemClock
    from trakt_scrobbled.events import MediaInfo
    from trakt_scrobbled.identify import Identifier
    from trakt_scrobbled.parse_worker import WorkerParser
    from trakt_scrobbled.store import open_db

    paths = [c.path for c in cases()][:50]
    worker = WorkerParser(idle=idle)
    spawned = 0
    real_child = worker._child

    async def counting_child() -> asyncio.subprocess.Process:
        nonlocal spawned
        before = worker._proc
        proc = await real_child()
        if proc is not before:
            spawned += 1
        return proc

    worker._child = counting_child  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        conn: sqlite3.Connection = open_db(Path(tmp) / "state.db")
        identifier = Identifier(None, conn, SystemClock(), parser=worker)
        t0 = time.perf_counter()
        await identifier.identify(MediaInfo(path=paths[0]))
        first = time.perf_counter() - t0
        proc = worker._proc
        assert proc is not None
        t0 = time.perf_counter()
        for p in paths[1:]:
            await identifier.identify(MediaInfo(path=p))
        each = (time.perf_counter() - t0) / (len(paths) - 1)
        hwm = _rss_kb(proc.pid, "VmHWM")
        rss = _rss_kb(proc.pid, "VmRSS")
        born = time.perf_counter()
        spawns_before = spawned
        t0 = time.perf_counter()
        for p in paths:  # every file again: all cached, no parse, no process
            await identifier.identify(MediaInfo(path=p))
        cached_each = (time.perf_counter() - t0) / len(paths)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), idle + 10)
        lived = time.perf_counter() - born
        conn.close()
    await worker.aclose()
    print(f"parse worker: first answer {1000 * first:.0f} ms (spawn + parsers load), then "
          f"{1000 * each:.1f} ms a new name; RSS {(rss or 0) / 1024:.1f} MB, peak "
          f"{(hwm or 0) / 1024:.1f} MB")  # fmt: skip
    print(f"  files seen before: {len(paths)} identified in {1000 * cached_each:.2f} ms each, "
          f"{spawned - spawns_before} worker spawns, 0 parses (cached readings)")  # fmt: skip
    print(f"  worker exited {'after' if proc.returncode is not None else 'NOT within'} "
          f"{lived:.1f} s idle (idle limit {idle:.0f} s); spawns in all: {spawned}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", default=str(Path(sys.executable).with_name("trakt-scrobbled")))
    parser.add_argument("--wrong", action="store_true", help="list the wrong answers")
    parser.add_argument("--no-worker", action="store_true", help="accuracy only")
    parser.add_argument("--idle", type=float, default=5.0, help="worker idle limit for the run")
    args = parser.parse_args()
    accuracy([args.cli], args.wrong)
    if not args.no_worker:
        parse_cost()
        asyncio.run(worker_cost(args.idle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
