"""Plex live mode against the fake Plex Media Server: real HTTP and a real websocket on loopback.

Each test drives the fake as Plex clients would (play, pause, seek, stop), or breaks it (a
dropped socket, a restart, a revoked token, garbage), and checks the events the adapter emits.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence

import pytest

from tests.fake_plex import FRIEND, KID, OWNER, OWNER_TOKEN, PHONE, TV, FakePlex, Session
from tests.realplayers import EventRecorder, running, wait_until
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
from trakt_scrobbled.players.plex_live import LiveCredentials, PlexLivePlayer, parse_notification

pytestmark = [pytest.mark.timeout(60)]

TV_SOURCE = f"plex:{TV.identifier}"
PHONE_SOURCE = f"plex:{PHONE.identifier}"


def kinds(events: EventRecorder) -> list[type]:
    """The events' kinds, less `Progressed`: the sessions read back at a (re)connect may
    confirm a position at any moment, which changes nothing."""
    return [type(e) for e in events.events if not isinstance(e, Progressed)]


@pytest.fixture
def plex() -> Iterator[FakePlex]:
    with FakePlex() as fake:
        yield fake


@contextlib.asynccontextmanager
async def live(
    plex: FakePlex,
    *,
    token: str = OWNER_TOKEN,
    accounts: Sequence[str] = (),
    gone_after: float = 30.0,
    account: str | None = None,
) -> AsyncIterator[tuple[PlexLivePlayer, EventRecorder]]:
    def credentials() -> LiveCredentials:
        return LiveCredentials(plex.url, token, "test-client-id", account=account)

    player = PlexLivePlayer(
        credentials, accounts, gone_after=gone_after, first_retry=0.05, refused_retry=0.2
    )
    async with running(player) as events:
        await wait_until(lambda: player.connected and plex.socket_count() > 0, 5, "connected")
        yield player, events


async def test_a_movie_played_paused_seeked_and_stopped(plex: FakePlex) -> None:
    async with live(plex) as (player, events):
        key = plex.play("1001", offset_ms=0)
        play = await events.wait_for(Playing, after=0)
        assert play.source == TV_SOURCE and play.position == 0.0 and not play.paused
        media = play.media
        assert media is not None and media.media_type is MediaType.MOVIE
        assert (media.title, media.year) == ("The Matrix", 1999)
        assert media.ids == Ids(imdb="tt0133093", tmdb=603, tvdb=169)
        assert media.duration == play.duration == 8160.0

        plex.pause(key, 100_000)
        pause = await events.wait_for(Paused, after=1)
        assert pause == Paused(TV_SOURCE, 100.0)

        plex.seek(key, 4_000_000)  # seeking while paused
        seek = await events.wait_for(Seeked, after=2)
        assert seek == Seeked(TV_SOURCE, 4000.0)

        plex.resume(key, 4_000_000)
        resume = await events.wait_for(Resumed, after=3)
        assert resume == Resumed(TV_SOURCE, 4000.0)

        plex.seek(key, 7_000_000)
        seek = await events.wait_for(Seeked, after=4)
        assert seek == Seeked(TV_SOURCE, 7000.0)

        plex.stop_session(key, 7_500_000)
        stop = await events.wait_for(Ended, after=5)
        assert stop == Ended(TV_SOURCE, 7500.0, EndReason.STOPPED)
        assert kinds(events) == [
            Playing,
            Paused,
            Seeked,
            Resumed,
            Seeked,
            Ended,
        ]
        assert player.ignored_counts() == {}
        server, tv = player.connections()
        assert server.detail == "followed live (owner's token: every account's plays)"
        assert tv.detail == f"{TV.title} ({OWNER.title}): idle"


async def test_an_episode_carries_its_show_numbers_and_ids(plex: FakePlex) -> None:
    async with live(plex) as (_, events):
        key = plex.play("2002", offset_ms=60_000)
        play = await events.wait_for(Playing, after=0)
        media = play.media
        assert media is not None and media.media_type is MediaType.EPISODE
        assert (media.show_title, media.season, media.episode) == ("Breaking Bad", 1, 2)
        assert media.ids == Ids(imdb="tt1054724", tmdb=62086, tvdb=349232)
        assert play.position == 60.0 and play.duration == 3480.0
        plex.pause(key, 1_800_000)
        assert (await events.wait_for(Paused, after=1)).position == 1800.0
        plex.stop_session(key, 1_800_000)
        assert (await events.wait_for(Ended, after=2)).position == 1800.0


async def test_metadata_is_looked_up_once_per_item(plex: FakePlex) -> None:
    async with live(plex) as (_, events):
        key = plex.play("1001")
        await events.wait_for(Playing, after=0)
        plex.stop_session(key, 50_000)
        await events.wait_for(Ended, after=1)
        key = plex.play("1001")
        await events.wait_for(Playing, after=2)
    assert plex.paths("/library/metadata/") == ["/library/metadata/1001"]


async def test_two_accounts_at_once_only_the_owner_is_followed(plex: FakePlex) -> None:
    async with live(plex) as (player, events):
        mine = plex.play("1001", account=OWNER, client=TV)
        theirs = plex.play("2002", account=FRIEND, client=PHONE, transcode=True)
        await events.wait_for(Playing, after=0)
        plex.pause(theirs, 500_000)
        await wait_until(lambda: player.ignored_counts() == {"account": 1}, 5, "bob ignored")
        plex.pause(mine, 300_000)
        await events.wait_for(Paused, after=1)
        plex.stop_session(theirs, 600_000)
        plex.stop_session(mine, 400_000)
        await events.wait_for(Ended, after=2)
        assert {e.source for e in events.events} == {TV_SOURCE}
        assert kinds(events) == [Playing, Paused, Ended]
        assert player.ignored_counts() == {"account": 1}


async def test_two_accounts_at_once_accounts_picks_the_listed_one(plex: FakePlex) -> None:
    async with live(plex, accounts=["BOB"]) as (player, events):
        mine = plex.play("1001", account=OWNER, client=TV)
        theirs = plex.play("2002", account=FRIEND, client=PHONE)
        play = await events.wait_for(Playing, after=0)
        assert play.source == PHONE_SOURCE
        # The household routes it by the Plex account's name or id.
        assert (play.user, play.user_id) == (FRIEND.title, str(FRIEND.id))
        plex.stop_session(mine, 100_000)
        plex.stop_session(theirs, 200_000)
        await events.wait_for(Ended, after=1)
        assert {e.source for e in events.events} == {PHONE_SOURCE}
        assert player.ignored_counts() == {"account": 1}


async def test_a_managed_home_user_on_the_owners_tv_is_told_apart(plex: FakePlex) -> None:
    """Same device, two people: the account id decides, never the device."""
    async with live(plex) as (player, events):
        owners = plex.play("1001", account=OWNER, client=TV)
        await events.wait_for(Playing, after=0)
        plex.stop_session(owners, 200_000)
        await events.wait_for(Ended, after=1)
        kids = plex.play("2002", account=KID, client=TV)
        plex.pause(kids, 100_000)
        await wait_until(lambda: player.ignored_counts() == {"account": 1}, 5, "kid ignored")
        plex.stop_session(kids, 100_000)
        owners = plex.play("1001", account=OWNER, client=TV, offset_ms=200_000)
        again = await events.wait_for(Playing, after=2)
        assert again.media is not None and again.media.media_type is MediaType.MOVIE
        assert kinds(events) == [Playing, Ended, Playing]
        assert player.ignored_counts() == {"account": 1}

    async with live(plex, accounts=["kid"]) as (player, events):
        plex.stop_session(owners, 300_000)
        kids = plex.play("2002", account=KID, client=TV)
        play = await events.wait_for(Playing, after=0)
        assert play.media is not None and play.media.show_title == "Breaking Bad"
        assert (play.user, play.user_id) == (KID.title, str(KID.id))
        plex.stop_session(kids, 100_000)
        await events.wait_for(Ended, after=1)
        assert kinds(events) == [Playing, Ended]


async def test_the_owners_play_names_the_owner_by_the_plex_tv_id_login_saved(
    plex: FakePlex,
) -> None:
    """The server calls its owner "1"; a routing rule (like a webhook) names the plex.tv id."""
    async with live(plex, account=OWNER.title) as (player, events):
        plex.play("1001", account=OWNER, client=TV)
        play = await events.wait_for(Playing, after=0)
        assert (play.user, play.user_id) == (OWNER.title, "1")

    def saved() -> LiveCredentials:
        return LiveCredentials(plex.url, OWNER_TOKEN, "test-client-id", "9912", OWNER.title)

    player = PlexLivePlayer(saved, (), first_retry=0.05, refused_retry=0.2)
    async with running(player) as events:
        await wait_until(lambda: player.connected and plex.socket_count() > 0, 5, "connected")
        play = await events.wait_for(Playing, after=0)  # the play in progress, read at connect
        assert (play.user, play.user_id) == (OWNER.title, "9912")


async def test_a_token_not_the_owners_follows_its_own_plays(plex: FakePlex) -> None:
    async with live(plex, token=FRIEND.token) as (player, events):
        plex.play("1001", account=OWNER, client=TV)  # never reaches this token's socket
        key = plex.play("2002", account=FRIEND, client=PHONE)
        play = await events.wait_for(Playing, after=0)
        assert play.source == PHONE_SOURCE
        plex.pause(key, 90_000)
        assert (await events.wait_for(Paused, after=1)).position == 90.0
        assert {e.source for e in events.events} == {PHONE_SOURCE}
        # 403 once, then never asked again
        assert plex.paths("/status/sessions") == ["/status/sessions"]
        assert "its own plays only" in player.connections()[0].detail
        assert player.ignored_counts() == {}


async def test_a_play_in_progress_at_connect_is_picked_up(plex: FakePlex) -> None:
    plex.play("1001", offset_ms=1_234_000)
    other = plex.play("2002", account=FRIEND, client=PHONE, offset_ms=10_000)
    plex.pause(other, 10_000)
    async with live(plex) as (_, events):
        play = await events.wait_for(Playing, after=0)
        assert play.source == TV_SOURCE and play.position == 1234.0 and not play.paused


async def test_a_dropped_websocket_reconnects_and_the_play_goes_on(plex: FakePlex) -> None:
    async with live(plex) as (player, events):
        key = plex.play("1001", offset_ms=0)
        await events.wait_for(Playing, after=0)
        dropped = time.monotonic()
        plex.drop_websockets()
        await wait_until(lambda: plex.connects >= 2 and player.connected, 5, "reconnected")
        back = time.monotonic() - dropped
        plex.pause(key, 300_000)
        pause = await events.wait_for(Paused, after=1)
        assert pause.position == 300.0
        assert back < 5.0
        assert kinds(events) == [
            Playing,
            Paused,
        ]


async def test_a_pause_missed_while_disconnected_is_caught_up(plex: FakePlex) -> None:
    async with live(plex) as (_player, events):
        key = plex.play("1001", offset_ms=0)
        await events.wait_for(Playing, after=0)
        plex.stop()  # down: the pause happens while nobody listens
        with plex._lock:
            plex.sessions[key].state, plex.sessions[key].offset_ms = "paused", 200_000
        plex.start()
        pause = await events.wait_for(Paused, after=1)
        assert pause.position == 200.0
        assert kinds(events) == [Playing, Paused]


async def test_a_server_restart_mid_play_continues_the_play(plex: FakePlex) -> None:
    async with live(plex) as (player, events):
        plex.play("2002", offset_ms=0)
        await events.wait_for(Playing, after=0)
        plex.restart()  # sessions forgotten until the client reports in again
        await wait_until(lambda: plex.connects >= 2 and player.connected, 5, "reconnected")
        key = plex.play("2002", offset_ms=1_000_000, session_key="77")  # a new session key
        seek = await events.wait_for(Seeked, after=1)
        assert seek.source == TV_SOURCE and seek.position == 1000.0
        plex.stop_session(key, 1_100_000)
        stop = await events.wait_for(Ended, after=2)
        assert stop.position == 1100.0
        # (the sessions read back at the reconnect may confirm the position: Progressed)
        assert kinds(events) == [Playing, Seeked, Ended]


async def test_a_play_the_server_forgot_ends_where_it_was(plex: FakePlex) -> None:
    async with live(plex, gone_after=0.5) as (_player, events):
        key = plex.play("1001", offset_ms=100_000)
        await events.wait_for(Playing, after=0)
        plex.pause(key, 400_000)
        await events.wait_for(Paused, after=1)
        plex.restart()  # the client never comes back
        stop = await events.wait_for(Ended, after=2)
        assert (stop.position, stop.reason) == (400.0, EndReason.GONE)


async def test_a_revoked_token_says_so_and_loses_nothing(
    plex: FakePlex, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with live(plex, gone_after=1.0) as (player, events):
        key = plex.play("1001", offset_ms=0)
        await events.wait_for(Playing, after=0)
        plex.pause(key, 500_000)
        await events.wait_for(Paused, after=1)
        plex.revoke(OWNER_TOKEN)
        stop = await events.wait_for(Ended, after=2)
        assert (stop.position, stop.reason) == (500.0, EndReason.GONE)
        await wait_until(lambda: len(plex.paths("/:/websockets")) >= 4, 5, "tries again")
        assert not player.connected
    refused = [
        r
        for r in caplog.records
        if "refused the token (401)" in r.getMessage() and r.levelno > logging.DEBUG
    ]
    assert len(refused) == 1 and refused[0].levelno == logging.ERROR
    assert "plex login" in refused[0].getMessage()
    assert OWNER_TOKEN not in caplog.text


async def test_malformed_and_unknown_notifications_are_logged_once_and_ignored(
    plex: FakePlex, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trakt_scrobbled")
    async with live(plex) as (player, events):
        plex.send_raw("not json at all")
        plex.send_raw('{"NotificationContainer": {"type": "playing"}}')
        plex.send_raw(
            '{"NotificationContainer": {"type": "playing", '
            '"PlaySessionStateNotification": [{"sessionKey": "1", "state": "dancing"}]}}'
        )
        plex.send_raw("[1, 2, 3]")
        plex.send_raw('{"NotificationContainer": {"type": "timeline", "size": 1}}')
        plex.send_raw('{"NotificationContainer": {"type": "activity", "size": 1}}')
        plex.send_raw("[" * 100_000)  # deep nesting
        plex.play("1001")
        await events.wait_for(Playing, after=0)
        assert player.ignored_counts() == {"malformed": 5}
    said = [r for r in caplog.records if "not understood" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING


async def test_trailers_and_unknown_items_are_not_played(plex: FakePlex) -> None:
    async with live(plex) as (player, events):
        plex.play("3003")  # a trailer
        plex.play("999999", client=PHONE)  # not in the library
        plex.play("1001")
        play = await events.wait_for(Playing, after=0)
        assert play.source == TV_SOURCE
        assert player.ignored_counts() == {"media_type": 1, "not_found": 1}


def test_parse_notification_reads_plex_documented_shape() -> None:
    text = (
        '{"NotificationContainer":{"type":"playing","size":1,"PlaySessionStateNotification":'
        '[{"sessionKey":"12","clientIdentifier":"abc","guid":"","ratingKey":"1001","url":"",'
        '"key":"/library/metadata/1001","viewOffset":61000,"playQueueItemID":3,"state":"paused"}]}}'
    )
    [note] = parse_notification(text)
    assert (note.session_key, note.rating_key, note.client, note.offset) == (
        "12",
        "1001",
        "abc",
        61.0,
    )
    assert note.state == "paused"


async def test_a_play_back_after_a_restart_and_stopped_at_once_ends_once(plex: FakePlex) -> None:
    async with live(plex) as (player, events):
        plex.play("1001", offset_ms=0)
        await events.wait_for(Playing)
        plex.restart()
        await wait_until(lambda: plex.connects >= 2 and player.connected, 5, "reconnected")
        key = plex.play("1001", offset_ms=5_000_000, session_key="55")
        plex.stop_session(key, 5_100_000)  # before its lookup could list it
        stop = await events.wait_for(Ended, after=1)
        assert stop == Ended(TV_SOURCE, 5100.0, EndReason.STOPPED)
        assert [k for k in kinds(events) if k is not Seeked] == [Playing, Ended]


async def test_a_session_key_reused_after_a_restart_is_looked_up_again(plex: FakePlex) -> None:
    """A restarted server numbers sessions anew: the old key's owner is not assumed."""
    async with live(plex, gone_after=0.5) as (player, events):
        plex.play("1001", account=OWNER, client=TV, session_key="10")
        await events.wait_for(Playing)
        plex.restart()
        await wait_until(lambda: plex.connects >= 2 and player.connected, 5, "reconnected")
        theirs = plex.play("1001", account=FRIEND, client=PHONE, session_key="10")
        plex.pause(theirs, 100_000)
        gone = await events.wait_for(Ended, after=1)  # the owner's TV never came back
        assert gone.source == TV_SOURCE and gone.reason is EndReason.GONE
        await wait_until(lambda: player.ignored_counts() == {"account": 1}, 5, "bob ignored")
        assert {e.source for e in events.events} == {TV_SOURCE}
        assert events.of(Paused) == []  # bob's pause is not the owner's
        assert "not the owner" not in repr(player.connections())
        assert "tv-living-room" in repr(player.connections()) and FRIEND.token not in repr(
            LiveCredentials(plex.url, FRIEND.token, "x")
        )


async def test_buffering_is_neither_a_pause_nor_a_seek(plex: FakePlex) -> None:
    async with live(plex) as (_, events):
        key = plex.play("1001", offset_ms=100_000)
        await events.wait_for(Playing)
        plex.buffer(key, 101_000)
        plex.resume(key, 102_000)
        plex.pause(key, 103_000)
        pause = await events.wait_for(Paused, after=1)
        assert pause.position == 103.0
        assert kinds(events) == [Playing, Paused]  # no Resumed, no Seeked around the buffering


async def test_a_hostile_rating_key_never_reaches_a_url(plex: FakePlex) -> None:
    hostile = "../../accounts?X-Plex-Token=x"
    note = {
        "sessionKey": "66",
        "clientIdentifier": TV.identifier,
        "ratingKey": hostile,
        "key": "/library/metadata/1",
        "viewOffset": 1000,
        "state": "playing",
    }
    message = {"NotificationContainer": {"type": "playing", "PlaySessionStateNotification": [note]}}
    async with live(plex) as (player, _):
        with plex._lock:
            plex.sessions["66"] = Session("66", hostile, TV, OWNER, "playing", 1000)
        plex.send_raw(json.dumps(message))
        await wait_until(lambda: player.ignored_counts() == {"not_found": 1}, 5, "ignored")
    assert [p for p in plex.paths() if "accounts" in p or ".." in p] == []
