"""Jellyfin and Emby against the fake server: real HTTP and a real WebSocket on loopback, and
webhooks as the Jellyfin Webhook plugin (the README's template) and Emby Premiere send them."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest

from tests.clocks import DrivenClock, ManualClock
from tests.fake_jellyfin import ALICE, API_KEY, BOB, TICKS, FakeJellyfin, episode, movie, trailer
from tests.realplayers import EventRecorder, running, wait_until
from trakt_scrobbled.config import ConfigError, MediaServerMode, parse_config
from trakt_scrobbled.events import (
    Ended,
    EndReason,
    Ids,
    MediaType,
    Paused,
    Playing,
    Progressed,
    Resumed,
    Seeked,
)
from trakt_scrobbled.players.jellyfin import (
    CHECK_EVERY,
    Flavour,
    Malformed,
    MediaServerLive,
    MediaServerWebhooks,
    parse_message,
    read_item,
    read_webhook_item,
)
from trakt_scrobbled.players.jellyfin_server import MediaServer

pytestmark = [pytest.mark.timeout(60)]

TV = "tv-living-room"
PHONE = "phone-bob"


@pytest.fixture
def jf() -> Iterator[FakeJellyfin]:
    with FakeJellyfin() as fake:
        yield fake


@contextlib.asynccontextmanager
async def live(
    jf: FakeJellyfin,
    *,
    key: str = API_KEY,
    users: Sequence[str] = (),
    gone_after: float = 30.0,
    flavour: Flavour = Flavour.JELLYFIN,
) -> AsyncIterator[tuple[MediaServerLive, EventRecorder]]:
    player = MediaServerLive(
        flavour,
        lambda: MediaServer(flavour, jf.url, key),
        users,
        gone_after=gone_after,
        first_retry=0.05,
        refused_retry=0.2,
    )
    async with running(player) as events:
        await wait_until(lambda: player.connected and jf.socket_count() > 0, 5, "connected")
        await wait_until(lambda: jf.subscribed() >= 1, 5, "subscribed")
        yield player, events


# --- reading items ----------------------------------------------------------------------------


def test_an_item_is_read_ids_first_with_the_servers_numbers() -> None:
    m = read_item(movie())
    assert not isinstance(m, str)
    assert m.media_type is MediaType.MOVIE
    assert m.ids == Ids(imdb="tt0133093", tmdb=603)
    assert (m.title, m.year, m.duration) == ("The Matrix", 1999, 8160.0)
    e = read_item(episode())
    assert not isinstance(e, str)
    assert (e.show_title, e.season, e.episode) == ("Breaking Bad", 1, 1)
    assert e.ids == Ids(imdb="tt0959621", tvdb=349232)
    assert read_item(trailer()) == "media_type"


def test_a_multi_episode_item_is_found_by_its_numbers_not_its_first_episodes_ids() -> None:
    e = read_item(episode(number=1, end=2))
    assert not isinstance(e, str)
    assert (e.episode, e.ids) == (1, Ids())
    if hasattr(e, "episodes"):  # the lifecycle's multi-episode support
        assert e.episodes == (1, 2)
    broken = read_item(episode(number=1, end=500))
    assert not isinstance(broken, str)
    assert getattr(broken, "episodes", ()) in ((), (1,))


def test_webhook_items_take_template_values_as_text_or_numbers() -> None:
    item = read_webhook_item(
        {
            "ItemType": "Episode",
            "Name": "Pilot",
            "SeriesName": "Breaking Bad",
            "SeasonNumber": "1",
            "EpisodeNumber": 1,
            "Provider_tvdb": "349232",
            "Provider_imdb": "not-an-id",
            "RunTimeTicks": str(3480 * TICKS),
        }
    )
    assert not isinstance(item, str)
    assert (item.season, item.episode, item.duration) == (1, 1, 3480.0)
    assert item.ids == Ids(tvdb=349232)


def test_messages_are_parsed_or_refused() -> None:
    assert parse_message('{"MessageType":"KeepAlive"}').kind == "KeepAlive"
    for bad in ("", "[]", '{"Data": 1}', "{" * 100_000, '{"MessageType": 5}'):
        with pytest.raises(Malformed):
            parse_message(bad)


# --- live mode -------------------------------------------------------------------------------


async def test_a_movie_play_pause_seek_resume_stop(jf: FakeJellyfin) -> None:
    async with live(jf) as (player, events):
        jf.play(TV, ALICE, movie(), 0.0)
        playing = await events.wait_for(Playing)
        assert playing.source == f"jellyfin:{TV}"
        assert playing.media.ids.imdb == "tt0133093" and playing.duration == 8160.0
        jf.progress(TV, 5.0)
        await events.wait_for(Progressed, lambda e: e.position == 5.0)
        jf.pause(TV, 6.0)
        assert (await events.wait_for(Paused)).position == 6.0
        jf.seek(TV, 3000.0)
        assert (await events.wait_for(Seeked)).position == 3000.0
        jf.resume(TV, 3000.0)
        assert (await events.wait_for(Resumed)).position == 3000.0
        jf.stop_playing(TV, 3001.0)
        ended = await events.wait_for(Ended)
        assert ended.reason is EndReason.STOPPED
        assert ended.position == pytest.approx(3000.0, abs=2.0)
        assert [type(e) for e in events.events].count(Playing) == 1
        assert "idle" in player.connections()[0].detail
    assert any('"SessionsStart"' in m and '"0,1500"' in m for m in jf.received)


async def test_an_episode_and_a_trailer(jf: FakeJellyfin) -> None:
    async with live(jf) as (player, events):
        jf.play(TV, ALICE, trailer())
        jf.play(TV, ALICE, episode(), 10.0)
        playing = await events.wait_for(Playing)
        assert playing.media.media_type is MediaType.EPISODE
        assert (playing.media.season, playing.media.episode) == (1, 1)
        assert playing.position == 10.0
        assert player.ignored_counts().get("media_type", 0) >= 1
        jf.stop_playing(TV, 3480.0)
        await events.wait_for(Ended)


async def test_two_users_at_once_only_the_owners_by_default(jf: FakeJellyfin) -> None:
    async with live(jf) as (_, events):
        jf.play(PHONE, BOB, episode())
        jf.play(TV, ALICE, movie())
        playing = await events.wait_for(Playing)
        assert playing.source == f"jellyfin:{TV}"  # alice administers the server
        jf.pause(PHONE, 30.0)
        jf.pause(TV, 40.0)
        await events.wait_for(Paused, lambda e: e.position == 40.0)
        assert all(e.source == f"jellyfin:{TV}" for e in events.events)


async def test_two_users_at_once_when_both_are_listed(jf: FakeJellyfin) -> None:
    async with live(jf, users=["Alice", "bob"]) as (_, events):
        jf.play(PHONE, BOB, episode())
        jf.play(TV, ALICE, movie())
        await events.wait_for(Playing, source=f"jellyfin:{PHONE}")
        await events.wait_for(Playing, source=f"jellyfin:{TV}")
        jf.pause(PHONE, 30.0)
        paused = await events.wait_for(Paused)
        assert paused.source == f"jellyfin:{PHONE}"
        jf.stop_playing(TV, 50.0)
        ended = await events.wait_for(Ended)
        assert ended.source == f"jellyfin:{TV}"


async def test_a_users_own_token_follows_only_that_user(jf: FakeJellyfin) -> None:
    async with live(jf, key=ALICE.token) as (_, events):
        jf.play(PHONE, BOB, episode())
        jf.play(TV, ALICE, movie())
        assert (await events.wait_for(Playing)).source == f"jellyfin:{TV}"
        assert len([e for e in events.events if isinstance(e, Playing)]) == 1


async def test_a_dropped_socket_continues_the_play(jf: FakeJellyfin) -> None:
    async with live(jf) as (_, events):
        jf.play(TV, ALICE, movie(), 100.0)
        await events.wait_for(Playing)
        connects = jf.connects
        jf.drop_websockets()
        await wait_until(lambda: jf.connects > connects and jf.socket_count() > 0, 5)
        await wait_until(lambda: jf.subscribed() >= 1, 5, "subscribed")
        jf.pause(TV, 110.0)
        await events.wait_for(Paused)
        assert [type(e) for e in events.events].count(Playing) == 1
        assert not any(isinstance(e, Ended) for e in events.events)


async def test_a_server_restart_continues_the_play_once_the_client_reports_in(
    jf: FakeJellyfin,
) -> None:
    async with live(jf) as (_, events):
        jf.play(TV, ALICE, episode(), 100.0)
        await events.wait_for(Playing)
        jf.restart()  # sessions forgotten; the client reports in again with its play
        await wait_until(lambda: jf.subscribed() >= 1, 5, "subscribed")
        jf.play(TV, ALICE, episode(), 102.0)
        await events.wait_for(Progressed, lambda e: e.position == 102.0)
        assert [type(e) for e in events.events].count(Playing) == 1
        assert not any(isinstance(e, Ended) for e in events.events)


async def test_a_play_that_never_comes_back_ends_as_gone(jf: FakeJellyfin) -> None:
    async with live(jf, gone_after=0.5) as (_, events):
        jf.play(TV, ALICE, movie(), 100.0)
        await events.wait_for(Playing)
        jf.restart()
        await wait_until(lambda: jf.subscribed() >= 1, 5, "subscribed")
        ended = await events.wait_for(Ended, timeout=5)
        assert ended.reason is EndReason.GONE


async def test_garbage_messages_are_counted_and_the_socket_goes_on(jf: FakeJellyfin) -> None:
    async with live(jf) as (player, events):
        for junk in (
            "not json",
            "[1, 2]",
            '{"MessageType": "Sessions", "Data": "nope"}',
            '{"MessageType": "Sessions", "Data": [1, null, {"DeviceId": []}]}',
            '{"MessageType": "Sessions", "Data": [{"DeviceId": "x", "NowPlayingItem": '
            '{"Type": "Movie", "RunTimeTicks": "NaN"}, "PlayState": {"PositionTicks": -5}}]}',
            '{"MessageType": "Playstate", "Data": {"Command": "Stop"}}',
            '{"MessageType": "ForceKeepAlive", "Data": "x"}',
            json.dumps({"MessageType": "Sessions", "Data": [{"NowPlayingItem": {}}] * 3}),
        ):
            jf.send_raw(junk)
        jf.play(TV, ALICE, movie())
        await events.wait_for(Playing, source=f"jellyfin:{TV}")
        assert player.ignored_counts()["malformed"] >= 3


async def test_a_wrong_key_is_refused_and_retried_without_leaking_it(
    jf: FakeJellyfin, caplog: pytest.LogCaptureFixture
) -> None:
    player = MediaServerLive(
        Flavour.JELLYFIN,
        lambda: MediaServer(Flavour.JELLYFIN, jf.url, "wrong-KEY-zzz"),
        refused_retry=0.1,
    )
    async with running(player):
        await wait_until(lambda: len([r for r in jf.requests if r[1] == "/Users/Me"]) >= 2, 5)
    assert "refused the API key" in caplog.text
    assert "wrong-KEY-zzz" not in caplog.text


class RecordingClock(ManualClock):
    """Time jumps on each sleep, which is noted; the loop still gets a turn."""

    def __init__(self) -> None:
        super().__init__()
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0.001)


async def test_an_unreachable_server_is_retried_with_capped_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = RecordingClock()
    player = MediaServerLive(
        Flavour.JELLYFIN,
        lambda: MediaServer(Flavour.JELLYFIN, "http://127.0.0.1:9", API_KEY),
        clock=clock,
        first_retry=0.3,
        max_retry=2.0,
    )
    async with running(player):
        await wait_until(lambda: len([s for s in clock.slept if s != CHECK_EVERY]) >= 6, 10)
        backoff = [s for s in clock.slept if s != CHECK_EVERY]
    assert backoff[:6] == pytest.approx([0.3, 0.6, 1.2, 2.0, 2.0, 2.0])
    assert caplog.text.count("did not answer") == 1  # said once, not on every retry
    assert API_KEY not in caplog.text


async def test_the_keepalive_the_server_asks_for_is_sent() -> None:
    with FakeJellyfin(keepalive=2) as jf:
        async with live(jf):
            await wait_until(lambda: any('"KeepAlive"' in m for m in jf.received), 5)


async def test_emby_live_uses_its_own_socket() -> None:
    with FakeJellyfin(emby=True) as emby:
        async with live(emby, flavour=Flavour.EMBY) as (_, events):
            emby.play(TV, ALICE, movie())
            assert (await events.wait_for(Playing)).source == f"emby:{TV}"


# --- webhook mode ----------------------------------------------------------------------------


def jf_hook(event: str, position: float, **extra: Any) -> dict[str, Any]:
    """What the README's template renders for the Generic destination."""
    body: dict[str, Any] = {
        "NotificationType": event,
        "ItemId": "mv1",
        "ItemType": "Movie",
        "Name": "The Matrix",
        "Year": 1999,
        "Provider_imdb": "tt0133093",
        "Provider_tmdb": "603",
        "PlaybackPositionTicks": int(position * TICKS),
        "RunTimeTicks": 200 * TICKS,
        "IsPaused": False,
        "NotificationUsername": "alice",
        "UserId": ALICE.id,
        "DeviceId": TV,
        "DeviceName": "Living Room TV",
        "ClientName": "Jellyfin Web",
    }
    body.update(extra)
    return body


@contextlib.asynccontextmanager
async def hooks(
    flavour: Flavour = Flavour.JELLYFIN, users: Sequence[str] = ("alice",)
) -> AsyncIterator[tuple[MediaServerWebhooks, EventRecorder]]:
    player = MediaServerWebhooks(flavour, secret="s" * 20, users=users)
    async with running(player) as events:
        await wait_until(lambda: player.handle({}) == "ignored:event", 5)
        yield player, events


async def test_jellyfin_webhooks_play_pause_seek_stop() -> None:
    async with hooks() as (player, events):
        assert player.handle(jf_hook("PlaybackStart", 0)) == "accepted"
        assert player.handle(jf_hook("PlaybackProgress", 20, IsPaused="true")) == "accepted"
        assert player.handle(jf_hook("PlaybackProgress", 150, IsPaused=True)) == "accepted"
        assert player.handle(jf_hook("PlaybackProgress", 150)) == "accepted"
        assert player.handle(jf_hook("PlaybackStop", 160)) == "accepted"
        kinds = [type(e) for e in events.events]
        assert kinds == [Playing, Paused, Seeked, Resumed, Ended]
        assert isinstance(events.events[0], Playing)
        assert events.events[0].source == f"jellyfin:{TV}"


async def test_repeated_stops_and_late_progress_never_reopen_a_play() -> None:
    async with hooks() as (player, events):
        player.handle(jf_hook("PlaybackStart", 0))
        player.handle(jf_hook("PlaybackStop", 195, PlayedToCompletion=True))
        for _ in range(5):
            assert player.handle(jf_hook("PlaybackStop", 195, PlayedToCompletion=True)) == (
                "ignored:not_playing"
            )
            assert player.handle(jf_hook("PlaybackProgress", 199)) == "ignored:ended"
        assert [type(e) for e in events.events] == [Playing, Ended]
        ended = events.events[-1]
        assert isinstance(ended, Ended) and ended.position == 200.0  # played to completion
        counts = player.ignored_counts()
        assert (counts["not_playing"], counts["ended"]) == (5, 5)
        assert player.handle(jf_hook("PlaybackStart", 0)) == "accepted"  # a real rewatch


async def test_webhooks_of_other_users_and_other_things_are_ignored() -> None:
    async with hooks() as (player, events):
        assert player.handle(jf_hook("PlaybackStart", 0, NotificationUsername="bob")) == (
            "ignored:user"
        )
        assert player.handle(jf_hook("ItemAdded", 0)) == "ignored:event"
        assert player.handle(jf_hook("PlaybackStart", 0, ItemType="Audio")) == "ignored:media_type"
        assert player.handle(jf_hook("PlaybackStart", 0, DeviceId=None, UserId=None)) == (
            "ignored:no_player"
        )
        assert events.events == []


async def test_webhooks_without_users_wait_for_the_servers_administrators(
    jf: FakeJellyfin,
) -> None:
    player = MediaServerWebhooks(
        Flavour.JELLYFIN,
        secret="s" * 20,
        server=lambda: MediaServer(Flavour.JELLYFIN, jf.url, API_KEY),
    )
    async with running(player) as events:
        await wait_until(lambda: player._users.owner is not None, 5)
        assert player.handle(jf_hook("PlaybackStart", 0, UserId=BOB.id)) == "ignored:user"
        assert player.handle(jf_hook("PlaybackStart", 0)) == "accepted"
        await events.wait_for(Playing)


def emby_hook(event: str, position: float | None, **info: Any) -> dict[str, Any]:
    """Emby Premiere's webhook body (Emby 4.8)."""
    playback: dict[str, Any] = {"PlaySessionId": "ps1", **info}
    if position is not None:
        playback["PositionTicks"] = int(position * TICKS)
    return {
        "Title": "alice is playing The Matrix",
        "Date": "2026-01-01T00:00:00.0000000Z",
        "Event": event,
        "User": {"Name": "alice", "Id": ALICE.id},
        "Item": movie(runtime=200.0),
        "Server": {"Name": "Emby", "Id": "srv", "Version": "4.8.10.0"},
        "Session": {"Client": "Emby Web", "DeviceName": "Firefox", "DeviceId": "dev-e"},
        "PlaybackInfo": playback,
    }


async def test_emby_webhooks() -> None:
    async with hooks(Flavour.EMBY) as (player, events):
        for event, position in (
            ("playback.start", 0.0),
            ("playback.pause", 50.0),
            ("playback.unpause", 50.0),
            ("playback.stop", 190.0),
            ("playback.stop", 190.0),
        ):
            player.handle(emby_hook(event, position))
        assert [type(e) for e in events.events] == [Playing, Paused, Resumed, Ended]
        assert events.events[0].source == "emby:dev-e"


# --- config ----------------------------------------------------------------------------------


def test_config_tables() -> None:
    config = parse_config(
        '[jellyfin]\nenabled = true\nurl = "http://127.0.0.1:8096"\napi_key = "abc123"\n'
        '[emby]\nenabled = true\nmode = "webhook"\nsecret = "0123456789abcdefgh"\n'
        'users = ["alice"]\n',
        {},
    )
    assert config.jellyfin.mode is MediaServerMode.LIVE
    assert config.emby.mode is MediaServerMode.WEBHOOK and config.emby.users == ("alice",)
    assert "abc123" not in repr(config)
    with pytest.raises(ConfigError) as err:
        parse_config('[jellyfin]\nenabled = true\nmode = "webhook"\nsecret = "shhh"\n', {})
    text = str(err.value)
    assert "jellyfin.secret" in text and "jellyfin.users" in text and "shhh" not in text
    with pytest.raises(ConfigError, match=r"jellyfin\.url"):
        parse_config("[jellyfin]\nenabled = true\n", {})


def readme_template() -> str:
    """The Generic destination template the README tells users to paste."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("```handlebars\n", 1)[1].split("```", 1)[0]
    return "\n".join(line.strip() for line in block.splitlines())


def render(template: str, values: dict[str, object]) -> str:
    """What the plugin makes of it: each `{{Var}}` its value as text, a missing one empty."""
    import re

    def one(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return "" if value is None else str(value).replace('"', '\\"')

    return re.sub(r"\{\{(\w+)\}\}", one, template)


async def test_the_readme_template_renders_to_what_the_adapter_reads() -> None:
    template = readme_template()
    values: dict[str, object] = {
        "NotificationType": "PlaybackProgress",
        "ItemId": "3f2a9c1e-0000-4000-8000-00000000ab12",
        "ItemType": "Episode",
        "Name": 'The "One" Where',
        "Year": 2008,
        "SeriesName": "Breaking Bad",
        "SeasonNumber": 1,
        "EpisodeNumber": 1,
        "EpisodeNumberEnd": 2,
        "Provider_tvdb": "349232",
        "PlaybackPositionTicks": 300 * TICKS,
        "RunTimeTicks": 3480 * TICKS,
        "IsPaused": True,  # C# renders "True"
        "NotificationUsername": "alice",
        "UserId": ALICE.id,
        "DeviceId": "dev-1",
        "DeviceName": "TV",
        "ClientName": "Jellyfin Android TV",
    }
    body = json.loads(render(template, values))
    item = read_webhook_item(body)
    assert not isinstance(item, str)
    assert (item.title, item.season, item.episode, item.ids) == ('The "One" Where', 1, 1, Ids())
    async with hooks() as (player, events):
        start = {**body, "NotificationType": "PlaybackStart", "IsPaused": "False"}
        assert player.handle(start) == "accepted"
        assert player.handle(body) == "accepted"
        assert [type(e) for e in events.events] == [Playing, Paused]
        assert events.events[1] == Paused("jellyfin:dev-1", 300.0)
        stop = json.loads(render(template, {**values, "NotificationType": "PlaybackStop"}))
        assert player.handle(stop) == "accepted"  # PlayedToCompletion left out: ""


# --- doctor ----------------------------------------------------------------------------------


async def test_doctor_checks_the_server_the_key_and_what_it_sees(jf: FakeJellyfin) -> None:
    from trakt_scrobbled.config import MediaServerConfig, ServerConfig
    from trakt_scrobbled.doctor import CheckStatus, check_media_server

    server = ServerConfig()
    assert await check_media_server("jellyfin", MediaServerConfig(), server) == ()
    jf.play(TV, ALICE, movie())
    jf.play(PHONE, BOB, episode())
    good = MediaServerConfig(enabled=True, url=jf.url, api_key=API_KEY)
    (check,) = await check_media_server("jellyfin", good, server)
    assert check.status is CheckStatus.OK
    assert "2 sessions (2 playing)" in check.message and "plays of alice" in check.message
    wrong = MediaServerConfig(enabled=True, url=jf.url, api_key="wrong-KEY-zzz")
    (check,) = await check_media_server("jellyfin", wrong, server)
    assert check.status is CheckStatus.FAIL and "refused the API key" in check.message
    assert "wrong-KEY-zzz" not in check.render()
    down = MediaServerConfig(enabled=True, url="http://127.0.0.1:9", api_key=API_KEY)
    (check,) = await check_media_server("jellyfin", down, server)
    assert check.status is CheckStatus.FAIL and "did not answer" in check.message
    hook = MediaServerConfig(
        enabled=True, mode=MediaServerMode.WEBHOOK, secret="s3cr3t-s3cr3t-s3cr3t", users=("a",)
    )
    (check,) = await check_media_server("emby", hook, server)
    assert "/emby/<your [emby] secret>" in check.message
    assert "s3cr3t" not in check.render()


def test_ticks_out_of_range_are_no_position() -> None:
    bad: tuple[object, ...] = (-1, "1e400", "nan", "inf", 10**30, True, [], "12abc")
    for ticks in bad:
        item = read_webhook_item({"ItemType": "Movie", "RunTimeTicks": ticks})
        assert not isinstance(item, str) and item.duration is None, ticks
    item = read_webhook_item({"ItemType": "Movie", "RunTimeTicks": "72000000000"})
    assert not isinstance(item, str) and item.duration == 7200.0


async def test_a_webhook_play_whose_stop_got_lost_ends_past_its_end() -> None:
    clock = DrivenClock()
    player = MediaServerWebhooks(Flavour.JELLYFIN, secret="s" * 20, users=["alice"], clock=clock)
    async with running(player) as events:
        await wait_until(lambda: player.handle({}) == "ignored:event", 5)
        player.handle(jf_hook("PlaybackStart", 0))  # 200 s long
        player.handle(jf_hook("PlaybackStart", 0, DeviceId="paused-tv", ItemId="x"))
        player.handle(
            jf_hook("PlaybackProgress", 50, DeviceId="paused-tv", ItemId="x", IsPaused=True)
        )
        clock.advance(200 + 590)
        await clock.settle()
        assert not any(isinstance(e, Ended) for e in events.events)
        clock.advance(30)
        await clock.settle()
        ended = await events.wait_for(Ended)
        assert (ended.source, ended.position, ended.reason) == (
            f"jellyfin:{TV}",
            200.0,
            EndReason.GONE,
        )
        clock.advance(12 * 3600)  # a paused play silent for 12 hours
        await clock.settle()
        late = await events.wait_for(Ended, source="jellyfin:paused-tv")
        assert late.position == 50.0


async def test_a_plain_users_token_is_refused_for_live_mode_with_a_clear_error(
    jf: FakeJellyfin, caplog: pytest.LogCaptureFixture
) -> None:
    from trakt_scrobbled.config import MediaServerConfig, ServerConfig
    from trakt_scrobbled.doctor import CheckStatus, check_media_server

    player = MediaServerLive(
        Flavour.JELLYFIN, lambda: MediaServer(Flavour.JELLYFIN, jf.url, BOB.token), refused_retry=5
    )
    async with running(player):
        await wait_until(lambda: "no administrator" in caplog.text, 5)
    assert BOB.token not in caplog.text
    config = MediaServerConfig(enabled=True, url=jf.url, api_key=BOB.token)
    checks = await check_media_server("jellyfin", config, ServerConfig())
    assert [c.status for c in checks] == [CheckStatus.OK, CheckStatus.FAIL]
    assert "no administrator" in checks[1].message


def test_our_device_id_is_per_machine_and_safe_in_a_header() -> None:
    from trakt_scrobbled.players.jellyfin import device_id_of

    assert device_id_of("media-pc") == "trakt-scrobbled-media-pc"
    assert device_id_of('evil" , Token="x') == "trakt-scrobbled-evilTokenx"
    assert device_id_of("") == "trakt-scrobbled-host"
