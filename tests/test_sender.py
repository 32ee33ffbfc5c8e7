"""The sender against the fake Trakt over real HTTP: every answer class handled as designed."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.fake_trakt import FakeTrakt, Movie
from trakt_scrobbled.clock import SystemClock
from trakt_scrobbled.events import Ids, MediaType, Scrobble, ScrobbleVerb, TraktItem
from trakt_scrobbled.history import iso
from trakt_scrobbled.outbox import Outbox, RowState
from trakt_scrobbled.sender import Sender, SenderState
from trakt_scrobbled.store import open_db
from trakt_scrobbled.trakt.auth import Auth, AuthState, Token, TokenStore
from trakt_scrobbled.trakt.client import TraktClient
from trakt_scrobbled.trakt.ratelimit import PostRateLimiter

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-secret"


@dataclass
class Rig:
    fake: FakeTrakt
    outbox: Outbox
    sender: Sender
    auth: Auth
    client: TraktClient
    movie: TraktItem
    matrix: Movie

    async def until(self, condition: Callable[[], bool], limit: float = 10.0) -> None:
        """Wait, bounded, for `condition` on state the sender task writes (SQLite, its fields)."""
        async with asyncio.timeout(limit):
            while not condition():  # noqa: ASYNC110 - no event exists for a SQLite row count
                await asyncio.sleep(0.02)


def login(fake: FakeTrakt, store: TokenStore) -> None:
    pair = fake.issue_token()
    store.save(Token(pair.access_token, pair.refresh_token, pair.created_at + pair.expires_in))


@pytest.fixture
async def rig(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    """Trakt's real 1 s POST spacing only for tests marked `real_rate_limit`: the rest go faster."""
    interval = 1.0 if request.node.get_closest_marker("real_rate_limit") else 0.1
    with FakeTrakt(post_interval=interval) as fake:
        async for r in _rig(tmp_path, fake, interval):
            yield r


async def _rig(tmp_path: Path, fake_trakt: FakeTrakt, interval: float) -> AsyncIterator[Rig]:
    clock = SystemClock()
    movie = fake_trakt.add_movie("The Matrix", 1999, imdb="tt0133093")
    item = TraktItem(MediaType.MOVIE, Ids(trakt=movie.ids.trakt), title="The Matrix", year=1999)
    store = TokenStore(tmp_path / "token.json")
    login(fake_trakt, store)
    conn = open_db(tmp_path / "state.db")
    outbox = Outbox(conn, clock)
    auth = Auth(store, clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    client = TraktClient(
        fake_trakt.url,
        CLIENT_ID,
        PostRateLimiter(clock, interval),
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
    )
    task = asyncio.create_task(sender.run())
    yield Rig(fake_trakt, outbox, sender, auth, client, item, movie)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await client.aclose()
    conn.close()


def scrobble(item: TraktItem, verb: ScrobbleVerb, progress: float, play: str = "p1") -> Scrobble:
    return Scrobble(
        verb, play, item, progress, watched=verb is ScrobbleVerb.STOP and progress >= 80
    )


@pytest.mark.real_rate_limit
async def test_start_and_watched_stop_reach_trakt_in_order_and_leave_the_queue(rig: Rig) -> None:
    rig.outbox.enqueue(scrobble(rig.movie, ScrobbleVerb.START, 5.0))
    rig.outbox.enqueue(scrobble(rig.movie, ScrobbleVerb.STOP, 97.5, play="p2"))
    await rig.until(lambda: rig.outbox.counts().pending == 0)
    seen = rig.fake.requests("/scrobble")
    assert [(r.path, r.json["progress"], r.status) for r in seen] == [
        ("/scrobble/start", 5.0, 201),
        ("/scrobble/stop", 97.5, 201),
    ]
    assert seen[0].headers["trakt-api-key"] == CLIENT_ID
    assert seen[0].headers["trakt-api-version"] == "2"
    assert seen[0].headers["user-agent"].startswith("trakt-scrobbled/")
    assert seen[0].headers["authorization"].startswith("Bearer ")
    assert seen[1].monotonic - seen[0].monotonic >= 1.0
    assert len(rig.fake.history()) == 1
    assert [r.result for r in rig.outbox.recent(2)] == ["watched", "watching"]


@pytest.mark.real_rate_limit
async def test_posts_are_never_closer_than_one_second(rig: Rig) -> None:
    for n in range(4):
        rig.outbox.enqueue(scrobble(rig.movie, ScrobbleVerb.START, 10.0 + n, play=f"p{n}"))
    await rig.until(lambda: rig.outbox.counts().pending == 0)
    times = [r.monotonic for r in rig.fake.requests("/scrobble")]
    assert len(times) == 4
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))
    assert all(r.status == 201 for r in rig.fake.requests("/scrobble"))


async def test_409_counts_as_done_and_is_not_retried(rig: Rig) -> None:
    rig.outbox.enqueue(scrobble(rig.movie, ScrobbleVerb.STOP, 95.0, play="a"))
    await rig.until(lambda: rig.outbox.counts().pending == 0)
    rig.outbox.enqueue(scrobble(rig.movie, ScrobbleVerb.STOP, 96.0, play="b"))
    await rig.until(lambda: rig.outbox.counts().pending == 0)
    statuses = [r.status for r in rig.fake.requests("/scrobble/stop")]
    assert statuses == [201, 409]
    assert len(rig.fake.history()) == 1
    assert rig.outbox.counts().dead == 0
    assert rig.outbox.recent(1)[0].result == "already scrobbled"


@pytest.mark.parametrize("status", [500, 502, 503, 520, 521, 522])
async def test_server_errors_are_retried_until_delivered(rig: Rig, status: int) -> None:
    rig.fake.fail_next(3, status=status, path_prefix="/scrobble")
    rig.outbox.enqueue(scrobble(rig.movie, ScrobbleVerb.STOP, 90.0))
    await rig.until(lambda: rig.outbox.counts().pending == 0)
    assert [r.status for r in rig.fake.requests("/scrobble")] == [status] * 3 + [201]
    assert len(rig.fake.history()) == 1


@pytest.mark.parametrize("status", [502, 504, 520, 524])
async def test_a_5xx_after_trakt_took_the_watch_is_looked_up_before_a_history_resend(
    rig: Rig, status: int
) -> None:
    """An edge answers 5xx when Trakt's answer is late or lost, after Trakt took the request:
    the watch may be recorded. Sent again as a history entry (history is not de-duplicated)
    it would count twice, so the row stays unsure and Trakt's history is looked up first."""
    rig.sender.use_history_after(0.5)
    rig.fake.fail_after_processing_next(1, status, path_prefix="/scrobble/stop")
    rig.fake.fail_next(5, status=500, path_prefix="/scrobble/stop")  # then long enough to be late
    rig.outbox.enqueue(scrobble(rig.movie, ScrobbleVerb.STOP, 97.0))
    await rig.until(lambda: rig.outbox.counts().pending == 0)
    assert rig.fake.requests("/scrobble/stop")[0].status == status
    assert len(rig.fake.history()) == 1
    history = rig.fake.requests("/sync/history")
    assert [r.method for r in history] == ["GET"]  # looked up, found, not sent again
    assert rig.outbox.recent(1)[0].result == "already in history"


async def test_dropped_connections_and_timeouts_are_retried(rig: Rig) -> None:
    rig.fake.drop_next(2, path_prefix="/scrobble")
    rig.fake.delay_next(1, 2.5, path_prefix="/scrobble")  # over the client's 2 s timeout
    rig.outbox.enqueue(scrobble(rig.movie, ScrobbleVerb.START, 20.0))
    await rig.until(lambda: rig.outbox.counts().pending == 0)
    seen = rig.fake.requests("/scrobble")
    assert len(seen) >= 3
    assert seen[0].status is None  # dropped unanswered
    assert seen[-1].status == 201
    assert rig.outbox.counts().dead == 0


@pytest.mark.real_rate_limit
async def test_429_waits_retry_after(rig: Rig) -> None:
    rig.fake.fail_next(1, status=429, retry_after=2, path_prefix="/scrobble")
    rig.outbox.enqueue(scrobble(rig.movie, ScrobbleVerb.START, 20.0))
    await rig.until(lambda: rig.outbox.counts().pending == 0)
    first, second = rig.fake.requests("/scrobble")
    assert (first.status, second.status) == (429, 201)
    assert second.monotonic - first.monotonic >= 2.0


@pytest.mark.parametrize("status", [404, 410, 422])
async def test_permanent_errors_become_dead_letters(rig: Rig, status: int) -> None:
    rig.fake.fail_next(1, status=status, path_prefix="/scrobble")
    rig.outbox.enqueue(scrobble(rig.movie, ScrobbleVerb.STOP, 50.0, play="bad"))
    rig.outbox.enqueue(scrobble(rig.movie, ScrobbleVerb.START, 10.0, play="good"))
    await rig.until(lambda: rig.outbox.counts().pending == 0)
    (dead,) = rig.outbox.rows(RowState.DEAD)
    assert dead.play_id == "bad"
    assert dead.error is not None and str(status) in dead.error
    assert len(rig.fake.requests("/scrobble")) == 2  # not retried, and the next row went out
    assert rig.outbox.retry() == 1
    await rig.until(lambda: rig.outbox.counts().pending == 0 and rig.outbox.counts().dead == 0)


async def test_expired_token_is_refreshed_once_and_the_row_delivered(rig: Rig) -> None:
    rig.fake.expire_access_tokens()
    old = rig.auth.access_token()
    rig.outbox.enqueue(scrobble(rig.movie, ScrobbleVerb.START, 20.0))
    await rig.until(lambda: rig.outbox.counts().pending == 0)
    assert [r.status for r in rig.fake.requests("/scrobble")] == [401, 201]
    assert len(rig.fake.requests("/oauth/token")) == 1
    assert rig.auth.access_token() not in (None, old)


async def test_revoked_login_parks_the_queue_until_a_new_login(rig: Rig, tmp_path: Path) -> None:
    rig.fake.expire_access_tokens()
    rig.fake.fail_next(1, status=401, path_prefix="/oauth/token")
    rig.outbox.enqueue(scrobble(rig.movie, ScrobbleVerb.STOP, 90.0))
    await rig.until(lambda: rig.sender.state is SenderState.LOGIN_NEEDED)
    assert rig.auth.state is AuthState.LOGIN_NEEDED
    assert rig.outbox.counts().pending == 1  # nothing dropped
    pair = rig.fake.issue_token()
    rig.auth.set_token(Token(pair.access_token, pair.refresh_token, pair.created_at + 86400))
    await rig.until(lambda: rig.outbox.counts().pending == 0)
    assert len(rig.fake.history()) == 1


async def test_wrong_client_id_parks_until_a_new_client(rig: Rig) -> None:
    bad = TraktClient(
        rig.fake.url, "wrong-id", PostRateLimiter(SystemClock()), token=rig.auth.access_token
    )
    rig.sender.use_client(bad)
    rig.outbox.enqueue(scrobble(rig.movie, ScrobbleVerb.START, 20.0))
    await rig.until(lambda: rig.sender.state is SenderState.CLIENT_REJECTED)
    assert rig.sender.last_error is not None and "client id" in rig.sender.last_error
    assert rig.outbox.counts().pending == 1
    rig.sender.use_client(rig.client)
    await rig.until(lambda: rig.outbox.counts().pending == 0)
    await bad.aclose()


async def test_late_watch_goes_to_history_with_its_real_time(rig: Rig) -> None:
    ended = time.time() - 600  # finished 10 minutes ago, while Trakt was unreachable
    rig.outbox.enqueue(scrobble(rig.movie, ScrobbleVerb.STOP, 97.0), at=ended)
    await rig.until(lambda: rig.outbox.counts().pending == 0)
    assert rig.fake.requests("/scrobble") == []
    (post,) = rig.fake.requests("/sync/history")
    assert post.json["movies"][0]["watched_at"] == iso(ended)
    (entry,) = rig.fake.history()
    assert abs(entry.watched_at.timestamp() - ended) < 0.01


async def test_stale_start_is_not_sent(rig: Rig) -> None:
    rig.outbox.enqueue(scrobble(rig.movie, ScrobbleVerb.START, 30.0), at=time.time() - 3600)
    await rig.until(lambda: rig.outbox.counts().pending == 0)
    assert rig.fake.requests("/scrobble") == []
    assert rig.outbox.recent(1)[0].result == "skipped: too old to be watching"


async def test_backlog_of_late_watches_is_batched(rig: Rig) -> None:
    ended = time.time() - 3600
    for n in range(250):
        rig.outbox.enqueue(scrobble(rig.movie, ScrobbleVerb.STOP, 95.0, play=f"p{n}"), at=ended + n)
    await rig.until(lambda: rig.outbox.counts().pending == 0, limit=30)
    posts = rig.fake.requests("/sync/history")
    assert [len(p.json["movies"]) for p in posts] == [100, 100, 50]
    assert len(rig.fake.history()) == 250


async def test_maybe_sent_watch_already_in_history_is_not_sent_again(rig: Rig) -> None:
    """A send that timed out may have reached Trakt: look before sending it again."""
    ended = time.time() - 600
    first = rig.outbox.enqueue(scrobble(rig.movie, ScrobbleVerb.STOP, 97.0, play="a"), at=ended)
    rig.outbox.mark_sending(first)  # as if a crash or timeout hit mid-request
    second = rig.outbox.enqueue(
        scrobble(rig.movie, ScrobbleVerb.STOP, 97.0, play="b"), at=ended + 5
    )
    rig.outbox.mark_sending(second)
    movie = rig.fake.add_movie("Other", 2001)
    rig.fake.add_history(movie, datetime.fromtimestamp(ended + 1, tz=UTC))  # unrelated item
    rig.fake.add_history(rig.matrix, datetime.fromtimestamp(ended + 2, tz=UTC))  # `first` arrived
    await rig.until(lambda: rig.outbox.counts().pending == 0)
    assert [r for r in rig.fake.requests("/sync/history") if r.method == "GET"]
    (post,) = [r for r in rig.fake.requests("/sync/history") if r.method == "POST"]
    assert [m["watched_at"] for m in post.json["movies"]] == [iso(ended + 5)]
    matrix_plays = [e for e in rig.fake.history() if e.item.title == "The Matrix"]  # type: ignore[union-attr]
    assert len(matrix_plays) == 2  # the one that had arrived, and `second`; not three
