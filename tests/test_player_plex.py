"""The Plex adapter, fed webhooks over real HTTP through the real `LocalServer`.

Positions are checked against a hand-moved clock; `/status/sessions` comes from a tiny aiohttp
fake of the Plex server defined here (its answers are Plex's documented shapes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from tests import plex_payloads as px
from tests.clocks import ManualClock
from tests.plex_payloads import plex_stack
from trakt_scrobbled.events import (
    Ended,
    EndReason,
    Ids,
    MediaType,
    Paused,
    PlayerEvent,
    Playing,
    Progressed,
    Resumed,
    Seeked,
)
from trakt_scrobbled.players.plex import Outcome, PlexPlayer

pytestmark = [pytest.mark.timeout(30)]

SOURCE = f"plex:{px.PLAYER_UUID}"
TOKEN = "plex-token-DO-NOT-LOG-42"


def kinds(events: list[PlayerEvent]) -> list[type]:
    return [type(e) for e in events]


# --- what each webhook becomes ------------------------------------------------------------------


async def test_movie_new_agent_play_pause_resume_stop() -> None:
    clock = ManualClock()
    async with plex_stack(clock=clock) as stack:
        [play] = await stack.send("media.play", px.movie(view_offset=0, file="/m/Matrix.mkv"))
        assert isinstance(play, Playing) and play.source == SOURCE
        assert play.position == 0.0 and play.duration == 8160.0 and not play.paused
        media = play.media
        assert media is not None
        assert media.media_type is MediaType.MOVIE
        assert (media.title, media.year, media.path) == ("The Matrix", 1999, "/m/Matrix.mkv")
        assert media.ids == Ids(imdb="tt0133093", tmdb=603, tvdb=169)
        assert media.duration == 8160.0

        clock.advance(100)
        [pause] = await stack.send("media.pause", px.movie())
        assert pause == Paused(SOURCE, 100.0)

        clock.advance(30)  # paused: the position stands still
        [resume] = await stack.send("media.resume", px.movie())
        assert resume == Resumed(SOURCE, 100.0)

        clock.advance(50)
        [stop] = await stack.send("media.stop", px.movie())
        assert stop == Ended(SOURCE, 150.0, EndReason.STOPPED)
        assert stack.player.ignored_counts() == {}


async def test_episode_new_agent_has_episode_ids() -> None:
    async with plex_stack() as stack:
        [play] = await stack.send("media.play", px.episode(view_offset=0))
        assert isinstance(play, Playing)
        media = play.media
        assert media.media_type is MediaType.EPISODE
        assert (media.show_title, media.season, media.episode) == ("Breaking Bad", 1, 2)
        assert media.title == "Cat's in the Bag..."
        assert media.ids == Ids(imdb="tt1054724", tmdb=62086, tvdb=349232)
        assert not media.show_ids  # plex:// guids carry none
        assert play.duration == 3480.0


async def test_legacy_agents() -> None:
    async with plex_stack() as stack:
        [play] = await stack.send("media.play", px.movie(legacy=True))
        assert isinstance(play, Playing) and play.media.ids == Ids(imdb="tt0133093")
        [stop, play2] = await stack.send("media.play", px.episode(legacy=True))
        assert isinstance(stop, Ended) and stop.reason is EndReason.REPLACED
        assert isinstance(play2, Playing)
        media = play2.media
        assert media.media_type is MediaType.EPISODE
        assert media.show_ids == Ids(tvdb=81189) and not media.ids
        assert (media.season, media.episode) == (1, 2)


async def test_legacy_episode_numbers_come_from_the_guid_when_metadata_lacks_them() -> None:
    meta = px.episode(legacy=True, season=None, number=None)
    meta["guid"] = "com.plexapp.agents.thetvdb://81189/3/7?lang=en"
    async with plex_stack() as stack:
        [play] = await stack.send("media.play", meta)
        assert isinstance(play, Playing)
        assert (play.media.season, play.media.episode) == (3, 7)
        assert play.media.show_ids == Ids(tvdb=81189)


async def test_legacy_tmdb_movie() -> None:
    meta = px.movie(legacy=True)
    meta["guid"] = "com.plexapp.agents.themoviedb://603?lang=en"
    async with plex_stack() as stack:
        [play] = await stack.send("media.play", meta)
        assert isinstance(play, Playing) and play.media.ids == Ids(tmdb=603)


async def test_a_thumb_part_is_accepted_and_play_at_an_offset() -> None:
    async with plex_stack() as stack:
        response = await stack.post(
            px.webhook("media.play", px.movie(view_offset=1_234_000)), thumb=px.jpeg(400_000)
        )
        assert response.status_code == 200
        [play] = stack.events.events
        assert isinstance(play, Playing) and play.position == 1234.0


async def test_missing_or_zero_offset_keeps_the_known_position() -> None:
    clock = ManualClock()
    async with plex_stack(clock=clock) as stack:
        await stack.send("media.play", px.movie(view_offset=600_000))
        clock.advance(20)
        [pause] = await stack.send("media.pause", px.movie(view_offset=0))
        assert pause.position == 620.0
        [resume] = await stack.send("media.resume", px.movie())
        assert resume.position == 620.0
        clock.advance(10)
        [stop] = await stack.send("media.stop", px.movie(view_offset=0))
        assert stop.position == 630.0


async def test_a_resume_far_from_the_known_position_is_a_seek() -> None:
    clock = ManualClock()
    async with plex_stack(clock=clock) as stack:
        await stack.send("media.play", px.movie(view_offset=0))
        clock.advance(60)
        [pause] = await stack.send("media.pause", px.movie(view_offset=60_000))
        assert pause.position == 60.0
        near = await stack.send("media.resume", px.movie(view_offset=65_000))
        assert kinds(near) == [Resumed] and near[0].position == 65.0
        await stack.send("media.pause", px.movie(view_offset=65_000))
        far = await stack.send("media.resume", px.movie(view_offset=3_000_000))
        assert kinds(far) == [Seeked, Resumed]
        assert far[0].position == far[1].position == 3000.0


async def test_scrobble_moves_to_ninety_percent_and_does_not_stop() -> None:
    clock = ManualClock()
    async with plex_stack(clock=clock) as stack:
        await stack.send("media.play", px.movie(view_offset=0))
        clock.advance(120)
        [progress] = await stack.send("media.scrobble", px.movie())
        assert isinstance(progress, Progressed)
        assert progress.position is not None and progress.position >= 0.9 * 8160.0
        clock.advance(60)
        [stop] = await stack.send("media.stop", px.movie())
        assert stop.position is not None and stop.position >= 0.9 * 8160.0 + 60.0


async def test_play_of_another_item_replaces_the_old_one() -> None:
    clock = ManualClock()
    async with plex_stack(clock=clock) as stack:
        await stack.send("media.play", px.movie(view_offset=0))
        clock.advance(42)
        stop, play = await stack.send("media.play", px.episode(view_offset=0))
        assert stop == Ended(SOURCE, 42.0, EndReason.REPLACED)
        assert stop.source == play.source == SOURCE
        assert isinstance(play, Playing) and play.media is not None
        assert play.media.media_type is MediaType.EPISODE


async def test_two_players_are_two_sources() -> None:
    async with plex_stack() as stack:
        [a] = await stack.send("media.play", px.movie(view_offset=0))
        [b] = await stack.send("media.play", px.episode(view_offset=0), player_uuid="tv-uuid")
        assert {a.source, b.source} == {SOURCE, "plex:tv-uuid"}
        assert {c.source for c in stack.player.connections()} == {SOURCE, "plex:tv-uuid"}
        detail = {c.source: c.detail for c in stack.player.connections()}
        assert "playing Breaking Bad S01E02" in detail["plex:tv-uuid"]


async def test_pause_of_an_unseen_item_starts_it_paused_and_stray_stop_is_ignored() -> None:
    async with plex_stack() as stack:
        assert await stack.send("media.stop", px.movie()) == []
        [play] = await stack.send("media.pause", px.movie(view_offset=90_000))
        assert isinstance(play, Playing) and play.paused and play.position == 90.0
        assert stack.player.ignored_counts() == {"not_playing": 1}


# --- who and what is ignored --------------------------------------------------------------------


async def test_a_foreign_account_is_ignored_and_counted() -> None:
    async with plex_stack() as stack:
        assert await stack.send("media.play", px.movie(), user=False, account="bob") == []
        assert await stack.send("media.stop", px.movie(), user=False, account="bob") == []
        assert stack.player.ignored_counts() == {"account": 2}
        assert kinds(await stack.send("media.play", px.movie())) == [Playing]


async def test_the_accounts_list_decides_case_insensitively() -> None:
    async with plex_stack(accounts=["Bob", "carol"]) as stack:
        [play] = await stack.send("media.play", px.movie(), user=False, account="bob")
        assert isinstance(play, Playing)
        assert await stack.send("media.play", px.episode(), account=px.OWNER) == []
        assert stack.player.ignored_counts() == {"account": 1}


async def test_trailers_music_live_tv_and_other_events_are_ignored() -> None:
    live = px.episode()
    live["live"] = 1
    live.pop("librarySectionType")
    photo = {"type": "photo", "librarySectionType": "photo", "ratingKey": "9"}
    async with plex_stack() as stack:
        assert await stack.send("media.play", px.trailer()) == []
        assert await stack.send("media.play", px.track()) == []
        assert await stack.send("media.play", photo) == []
        assert await stack.send("media.play", live) == []
        assert await stack.send("library.new", px.movie()) == []
        assert await stack.send("media.rate", px.movie()) == []
        assert stack.player.ignored_counts() == {"media_type": 3, "live": 1, "event": 2}


def test_handle_never_raises_on_odd_payloads() -> None:
    player = PlexPlayer([])  # not running: nothing can be emitted
    odd: list[Any] = [
        {},
        {"event": ["media.play"]},
        {"event": "media.play", "user": True, "Metadata": []},
        {"event": "media.play", "user": True, "Metadata": {"type": "movie"}},
    ]
    outcomes = [player.handle(p) for p in odd]
    assert outcomes == [Outcome.NOT_RUNNING] * 4
    assert player.handle(px.webhook("media.play", px.movie())) is Outcome.NOT_RUNNING
    assert player.ignored_counts() == {"not_running": 5}


async def test_wrong_types_in_a_payload_are_tolerated() -> None:
    weird = px.movie()
    weird.update(
        viewOffset=float("nan"),
        duration="abc",
        year=True,
        ratingKey=10**40,
        Guid=[{"id": 7}, "x", {"id": "tmdb://-3"}, {"id": "imdb://nope"}],
        Media={"Part": 1},
    )
    unhashable = px.movie()
    unhashable["librarySectionType"] = {"not": "hashable"}
    async with plex_stack() as stack:
        [play] = await stack.send("media.play", weird, player_uuid="12")
        assert isinstance(play, Playing)
        assert play.source == "plex:12" and play.position == 0.0 and play.duration is None
        assert not play.media.ids and play.media.year is None
        assert await stack.send("media.play", unhashable) == []
        no_player = px.webhook("media.play", px.movie())
        del no_player["Player"]
        assert (await stack.post(no_player)).status_code == 200
        assert stack.player.handle(no_player) is Outcome.NO_PLAYER
        assert stack.player.ignored_counts() == {"media_type": 1, "no_player": 2}


# --- positions from the Plex server -------------------------------------------------------------


class FakePlex:
    """`GET /status/sessions` as a Plex server answers it, behind an `X-Plex-Token` check."""

    def __init__(self) -> None:
        self.answer: Callable[[], web.StreamResponse] = lambda: web.json_response({})
        self.tokens: list[str | None] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def sessions(self, request: web.Request) -> web.StreamResponse:
        self.tokens.append(request.headers.get("X-Plex-Token"))
        await self.gate.wait()
        if request.headers.get("X-Plex-Token") != TOKEN:
            return web.Response(status=401)
        return self.answer()


@contextlib.asynccontextmanager
async def fake_plex() -> AsyncIterator[tuple[FakePlex, str]]:
    fake = FakePlex()
    app = web.Application()
    app.router.add_get("/status/sessions", fake.sessions)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield fake, f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


async def test_missing_offsets_are_asked_of_the_plex_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = ManualClock()
    async with (
        fake_plex() as (fake, url),
        plex_stack(clock=clock, server_url=url, server_token=TOKEN) as stack,
    ):
        fake.answer = lambda: web.json_response(px.sessions(1_800_000))
        fake.gate.clear()  # the lookup hangs until the pause is in too
        await stack.post(px.webhook("media.play", px.movie()))
        await stack.post(px.webhook("media.pause", px.movie(view_offset=1_830_000)))
        assert stack.events.events == []  # the pause waits behind the play's lookup
        fake.gate.set()
        await stack.events.wait_for(Paused)
        play, pause = stack.events.events
        assert isinstance(play, Playing) and play.position == 1800.0
        assert pause == Paused(SOURCE, 1830.0)
        assert fake.tokens == [TOKEN]

        # an offset in the webhook is used as is: no lookup
        asked = len(fake.tokens)
        [resume] = await stack.send("media.resume", px.movie(view_offset=1_831_000))
        assert resume.position == 1831.0 and len(fake.tokens) == asked

        # a session of another player does not count; the known position stands
        fake.answer = lambda: web.json_response(px.sessions(5_000_000, player_uuid="other"))
        start = len(stack.events.events)
        await stack.post(px.webhook("media.pause", px.movie()))
        pause2 = await stack.events.wait_for(Paused, after=start)
        assert pause2.position == 1831.0
    assert TOKEN not in caplog.text


async def test_a_failing_plex_server_is_logged_once_and_positions_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = ManualClock()
    async with (
        fake_plex() as (fake, url),
        plex_stack(clock=clock, server_url=url, server_token="wrong-" + TOKEN) as stack,
    ):
        await stack.post(px.webhook("media.play", px.movie()))
        await stack.events.wait_for(Playing)
        clock.advance(30)
        await stack.post(px.webhook("media.pause", px.movie()))
        pause = await stack.events.wait_for(Paused)
        assert pause.position == 30.0
        assert len(fake.tokens) == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "HTTP 401" in warnings[0].getMessage()
    assert TOKEN not in caplog.text


async def test_an_unreachable_plex_server_does_not_block_webhooks() -> None:
    async with plex_stack(server_url="http://127.0.0.1:9", server_token=TOKEN) as stack:
        await stack.post(px.webhook("media.play", px.movie()))
        play = await stack.events.wait_for(Playing)
        assert play.position == 0.0


async def test_a_malformed_server_url_does_not_lose_webhooks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with plex_stack(server_url="localhost:32400", server_token=TOKEN) as stack:
        await stack.post(px.webhook("media.play", px.movie()))
        await stack.post(px.webhook("media.pause", px.movie()))
        await stack.events.wait_for(Paused)
        assert kinds(stack.events.events) == [Playing, Paused]
    assert len(caplog.records) == 1 and TOKEN not in caplog.text
