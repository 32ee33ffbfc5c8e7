"""File-name parsing in a child process: same answers as in-process, and robust to its death."""

from __future__ import annotations

import asyncio

from trakt_scrobbled.events import MediaType
from trakt_scrobbled.identify import parse_path
from trakt_scrobbled.parse_worker import WorkerParser

NAMES = [
    "/m/The.Matrix.1999.1080p.BluRay.x264.mkv",
    "/tv/Show Name/Season 1/Show.Name.S01E02E03.720p.WEB.mkv",
    "/m/Movie.2010.Trailer.mkv",
    "/x/notes.txt",
]


async def test_answers_match_in_process_parsing() -> None:
    worker = WorkerParser()
    try:
        for name in NAMES:
            assert await worker.parse(name, check_extension=True) == parse_path(name)
    finally:
        await worker.aclose()


async def test_a_dead_child_is_replaced_and_nothing_is_lost() -> None:
    worker = WorkerParser()
    try:
        first = await worker.parse(NAMES[0], check_extension=True)
        assert first.type is MediaType.MOVIE
        proc = worker._proc
        assert proc is not None
        proc.kill()
        await proc.wait()
        again = await worker.parse(NAMES[1], check_extension=True)
        assert again.type is MediaType.EPISODE
        assert again.episodes == (2, 3)
    finally:
        await worker.aclose()


async def test_the_child_exits_when_idle() -> None:
    worker = WorkerParser(idle=0.2)
    try:
        await worker.parse(NAMES[0], check_extension=True)
        proc = worker._proc
        assert proc is not None
        async with asyncio.timeout(5):  # it goes by itself
            await proc.wait()
        assert proc.returncode == 0
        assert (await worker.parse(NAMES[0], check_extension=True)).type is MediaType.MOVIE
    finally:
        await worker.aclose()
