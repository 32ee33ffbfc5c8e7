"""The household's lanes: one outbox lane, token, client (own 1 POST/s spacing) and sender
per Trakt account, over one state database and one fake Trakt that knows users by token."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fake_trakt import FakeTrakt
from trakt_scrobbled.clock import SystemClock
from trakt_scrobbled.events import Ids, MediaType, Scrobble, ScrobbleVerb, TraktItem
from trakt_scrobbled.outbox import Outbox, accounts_with_rows
from trakt_scrobbled.sender import Sender, SenderState
from trakt_scrobbled.store import open_db
from trakt_scrobbled.trakt.auth import Auth, Token, TokenStore
from trakt_scrobbled.trakt.client import TraktClient
from trakt_scrobbled.trakt.ratelimit import PostRateLimiter

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-secret"
INTERVAL = 0.2
"""The fake's POST spacing and each lane's: Trakt's 1 s scaled down 5x (same rules)."""


@dataclass
class Lane:
    name: str
    outbox: Outbox
    auth: Auth
    client: TraktClient
    sender: Sender
    task: asyncio.Task[None]


async def until(condition: Callable[[], bool], limit: float = 15.0) -> None:
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110 - no event exists for a SQLite row count
            await asyncio.sleep(0.01)


@pytest.fixture
async def house(tmp_path: Path) -> AsyncIterator[tuple[FakeTrakt, dict[str, Lane], TraktItem]]:
    clock = SystemClock()
    with FakeTrakt(post_interval=INTERVAL) as fake:
        movie = fake.add_movie("The Matrix", 1999, imdb="tt0133093")
        item = TraktItem(MediaType.MOVIE, Ids(trakt=movie.ids.trakt), title="The Matrix")
        conn = open_db(tmp_path / "state.db")
        lanes: dict[str, Lane] = {}
        for name in ("alice", "bob"):
            fake.add_user(name)
            store = TokenStore(tmp_path / f"token-{name}.json")
            pair = fake.issue_token(name)
            store.save(
                Token(pair.access_token, pair.refresh_token, pair.created_at + pair.expires_in)
            )
            outbox = Outbox(conn, clock, account=name)
            auth = Auth(
                store, clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, account=name
            )
            client = TraktClient(
                fake.url,
                CLIENT_ID,
                PostRateLimiter(clock, INTERVAL),
                token=auth.access_token,
                timeout=2.0,
            )
            sender = Sender(
                outbox,
                client,
                auth,
                clock,
                rng=random.Random(7),
                backoff_base=0.1,
                backoff_cap=0.5,
                busy_delay=0.2,
                account=name,
            )
            task = asyncio.create_task(sender.run(), name=f"sender-{name}")
            lanes[name] = Lane(name, outbox, auth, client, sender, task)
        yield fake, lanes, item
        for lane in lanes.values():
            lane.task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await lane.task
            await lane.client.aclose()
        conn.close()


def stop(item: TraktItem, play: str, progress: float = 95.0) -> Scrobble:
    return Scrobble(ScrobbleVerb.STOP, play, item, progress, watched=progress >= 80)


def pause(item: TraktItem, play: str) -> Scrobble:
    return Scrobble(ScrobbleVerb.STOP, play, item, 40.0, watched=False)


async def test_each_lane_lands_on_its_own_trakt_user_only(
    house: tuple[FakeTrakt, dict[str, Lane], TraktItem],
) -> None:
    fake, lanes, item = house
    lanes["alice"].outbox.enqueue(stop(item, "a1"))
    lanes["bob"].outbox.enqueue(pause(item, "b1"))
    lanes["bob"].outbox.enqueue(stop(item, "b2"))
    await until(lambda: all(lane.outbox.counts().pending == 0 for lane in lanes.values()))
    assert len(fake.history("alice")) == 1
    assert len(fake.history("bob")) == 1
    assert fake.history() == ()  # nothing reached a user no lane is for
    by_user = {(r.user, r.json["progress"]) for r in fake.requests("/scrobble")}
    assert by_user == {("alice", 95.0), ("bob", 40.0), ("bob", 95.0)}
    assert accounts_with_rows(lanes["alice"].outbox._conn) == {}


async def test_a_lane_sees_retries_and_drops_only_its_own_rows(
    house: tuple[FakeTrakt, dict[str, Lane], TraktItem],
) -> None:
    _, lanes, item = house
    for lane in lanes.values():
        lane.task.cancel()  # nothing is sent: the rows stay to be looked at
    await asyncio.sleep(0)
    a = lanes["alice"].outbox.enqueue(stop(item, "a1"))
    b = lanes["bob"].outbox.enqueue(stop(item, "b1"))
    alice, bob = lanes["alice"].outbox, lanes["bob"].outbox
    assert [r.id for r in alice.rows()] == [a] and [r.id for r in bob.rows()] == [b]
    assert alice.get(b) is None and bob.get(a) is None
    assert alice.drop(b) is False  # bob's row is not alice's to drop
    assert alice.next_pending() is not None and alice.next_pending().id == a  # type: ignore[union-attr]
    alice.bury(bob.rows()[0], "not hers")
    assert bob.rows()[0].state == "pending"
    assert alice.counts().pending == 1 and bob.counts().pending == 1
    assert accounts_with_rows(alice._conn) == {"alice": 1, "bob": 1}
    # Both lanes' watches of the same movie are each their own (rewatch checks per account).
    keys = ('{"trakt":1}',)
    alice.enqueue(stop(item, "a2"), watch_keys=keys)
    assert alice.watched_since(keys, 0) is not None
    assert bob.watched_since(keys, 0) is None


async def test_alice_logged_out_never_holds_bobs_scrobbles(
    house: tuple[FakeTrakt, dict[str, Lane], TraktItem], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fake, lanes, item = house
    fake.expire_access_tokens("alice")
    fake.fail_next(1000, 401, path_prefix="/oauth/token")  # her refresh is refused: login needed
    lanes["alice"].outbox.enqueue(stop(item, "a1"))
    await until(lambda: lanes["alice"].sender.state is SenderState.LOGIN_NEEDED)
    latencies = []
    for n in range(5):
        await asyncio.sleep(INTERVAL)
        sent = time.monotonic()
        lanes["bob"].outbox.enqueue(pause(item, f"b{n}"))
        want = n + 2
        await until(lambda: len(fake.requests("/scrobble/stop")) >= want)  # noqa: B023
        latencies.append(fake.requests("/scrobble/stop")[-1].monotonic - sent)
    assert max(latencies) < 1.0, latencies  # held by alice's lane, they would never leave
    assert lanes["alice"].outbox.counts().pending == 1  # kept, not lost
    # Whose login failed, and whose scrobbles went, each line says.
    lines = caplog.messages
    assert "account alice: Trakt no longer accepts the login (revoked or expired)" in lines
    assert sum(line.startswith("account bob: stop ") for line in lines) == 5, lines
    assert fake.history("alice") == ()
    assert {r.user for r in fake.requests("/scrobble/stop")[1:]} == {"bob"}


async def test_a_429_storm_on_alice_leaves_bobs_latency_unchanged(
    house: tuple[FakeTrakt, dict[str, Lane], TraktItem],
) -> None:
    fake, lanes, item = house

    def bobs() -> list[float]:
        return [r.monotonic for r in fake.requests("/scrobble") if r.user == "bob"]

    async def bob_latencies(tag: str) -> list[float]:
        out = []
        for n in range(5):
            await asyncio.sleep(INTERVAL)
            before = len(bobs())
            sent = time.monotonic()
            lanes["bob"].outbox.enqueue(pause(item, f"{tag}{n}"))
            await until(lambda: len(bobs()) > before)  # noqa: B023 - awaited in this turn
            out.append(bobs()[-1] - sent)
        return out

    calm = await bob_latencies("calm")
    # Alice is told to wait 5 s: were Bob's lane held by hers, his pauses would wait seconds.
    fake.fail_next(1000, 429, path_prefix="/scrobble", retry_after=5, user="alice")
    for n in range(10):
        lanes["alice"].outbox.enqueue(stop(item, f"a{n}"))
    await until(lambda: any(r.status == 429 for r in fake.requests("/scrobble")))
    storm = await bob_latencies("storm")
    assert any(r.status == 429 and r.user == "alice" for r in fake.requests("/scrobble"))
    assert all(r.status != 429 for r in fake.requests("/scrobble") if r.user == "bob")
    # Bounds far below Alice's wait, so that a loaded machine cannot fail them by chance.
    assert max(storm) < 1.0, (calm, storm)
    assert sorted(storm)[2] < sorted(calm)[2] + 0.25, (calm, storm)
    assert lanes["alice"].outbox.counts().pending == 10  # waiting, none lost or dead
    assert lanes["alice"].outbox.counts().dead == 0


async def test_two_backlogs_drain_in_parallel_each_keeping_its_spacing(
    house: tuple[FakeTrakt, dict[str, Lane], TraktItem],
) -> None:
    fake, lanes, item = house
    n = 10
    start = time.monotonic()
    for i in range(n):
        for lane in lanes.values():
            lane.outbox.enqueue(pause(item, f"{lane.name}{i}"))
    await until(lambda: all(lane.outbox.counts().pending == 0 for lane in lanes.values()))
    took = time.monotonic() - start
    for name in lanes:
        arrivals = [r.monotonic for r in fake.requests("/scrobble") if r.user == name]
        assert len(arrivals) == n
        gaps = [b - a for a, b in itertools.pairwise(arrivals)]
        assert min(gaps) >= INTERVAL - 0.01, gaps
    assert all(r.status == 201 for r in fake.requests("/scrobble"))
    one_lane = (n - 1) * INTERVAL
    assert took < one_lane * 1.6, took  # together about the time of one, not two
