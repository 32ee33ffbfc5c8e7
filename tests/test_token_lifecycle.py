"""A Trakt login's whole life: first-run device login in the daemon, refreshes (scheduled and
after 401s), a refused refresh, restarts, and no secret in any log line on the way."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import re
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.daemon import CLIENT_ID, CLIENT_SECRET, Daemon, Home, NotifySocket, enqueue
from tests.daemon import queue_counts as daemon_queue
from tests.fake_trakt import FakeTrakt, Movie
from trakt_scrobbled.clock import SystemClock
from trakt_scrobbled.events import Ids, MediaType, Scrobble, ScrobbleVerb, TraktItem
from trakt_scrobbled.outbox import Outbox
from trakt_scrobbled.sender import Sender, SenderState
from trakt_scrobbled.store import open_db
from trakt_scrobbled.trakt.auth import Auth, AuthState, Token, TokenStore
from trakt_scrobbled.trakt.client import TraktClient
from trakt_scrobbled.trakt.device import DeviceCode, login_until_done
from trakt_scrobbled.trakt.errors import Unauthorized
from trakt_scrobbled.trakt.ratelimit import PostRateLimiter

CODE_LOG = re.compile(r"Trakt login needed: open (\S+) and enter the code (\w+) \(or open (\S+)\)")
LOGGED_IN = re.compile(r"INFO \S+: logged in to Trakt")
REFRESHED = re.compile(r"Trakt login refreshed")


def item_of(movie: Movie) -> TraktItem:
    return TraktItem(
        MediaType.MOVIE, Ids(trakt=movie.ids.trakt), title=movie.title, year=movie.year
    )


def watched_stop(item: TraktItem, play: str = "p1") -> Scrobble:
    return Scrobble(ScrobbleVerb.STOP, play, item, 95.0, watched=True)


def authorized(fake: FakeTrakt, access_token: str) -> int:
    resp = httpx.get(
        f"{fake.url}/sync/history",
        headers={
            "trakt-api-key": CLIENT_ID,
            "trakt-api-version": "2",
            "Authorization": f"Bearer {access_token}",
        },
    )
    return resp.status_code


def stored_pair(path: Path) -> tuple[str, str]:
    """The (access, refresh) pair in a token file."""
    data = json.loads(path.read_text())
    return data["access_token"], data["refresh_token"]


# --- in-process: Auth, the sender and the device flow against the fake -----------------------


@dataclass
class Rig:
    fake: FakeTrakt
    store: TokenStore
    auth: Auth
    client: TraktClient
    outbox: Outbox
    sender: Sender
    item: TraktItem

    async def until(self, condition: Callable[[], bool], limit: float = 10.0) -> None:
        """Bounded wait on state the sender task writes (SQLite rows, its fields)."""
        async with asyncio.timeout(limit):
            while not condition():  # noqa: ASYNC110 - no event exists for a SQLite row count
                await asyncio.sleep(0.02)


@pytest.fixture
def fake() -> Iterator[FakeTrakt]:
    with FakeTrakt(device_interval=1, post_interval=0) as fake:
        yield fake


@pytest.fixture
async def rig(tmp_path: Path, fake: FakeTrakt) -> AsyncIterator[Rig]:
    """A logged-in Auth and a running sender, as the daemon wires them."""
    clock = SystemClock()
    store = TokenStore(tmp_path / "state" / "token.json")
    pair = fake.issue_token()
    store.save(Token(pair.access_token, pair.refresh_token, pair.created_at + pair.expires_in))
    auth = Auth(store, clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    client = TraktClient(
        fake.url, CLIENT_ID, PostRateLimiter(clock, 0.0), token=auth.access_token, timeout=5.0
    )
    conn = open_db(tmp_path / "state" / "state.db")
    outbox = Outbox(conn, clock)
    sender = Sender(
        outbox, client, auth, clock, rng=random.Random(3), backoff_base=0.1, backoff_cap=0.5
    )
    task = asyncio.create_task(sender.run())
    item = item_of(fake.add_movie("The Matrix", 1999))
    yield Rig(fake, store, auth, client, outbox, sender, item)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await client.aclose()
    conn.close()


async def test_concurrent_401s_spend_the_refresh_token_once(rig: Rig) -> None:
    rig.fake.expire_access_tokens()
    old_access, old_refresh = stored_pair(rig.store.path)
    callers = 6
    everyone_rejected = asyncio.Barrier(callers)

    async def caller() -> tuple[bool, str | None, str]:
        rejected = rig.auth.access_token()
        with pytest.raises(Unauthorized):
            await rig.client.get("/sync/history", auth=True)
        await everyone_rejected.wait()
        ok = await rig.auth.refresh(rig.client, rejected=rejected)
        on_disk = stored_pair(rig.store.path)[0]  # read the moment refresh returned
        return ok, rig.auth.access_token(), on_disk

    results = await asyncio.gather(*(caller() for _ in range(callers)))
    (refresh,) = rig.fake.requests("/oauth/token")
    assert refresh.status == 200
    assert refresh.json["refresh_token"] == old_refresh
    new_access = rig.auth.access_token()
    assert new_access is not None and new_access != old_access
    assert results == [(True, new_access, new_access)] * callers
    assert (await rig.client.get("/sync/history", auth=True)).status == 200
    assert rig.auth.state is AuthState.LOGGED_IN


def spend_refresh_token(fake: FakeTrakt, refresh_token: str) -> None:
    """Someone else used the single-use refresh token (another install sharing the file)."""
    resp = httpx.post(
        f"{fake.url}/oauth/token",
        headers={"trakt-api-key": CLIENT_ID, "trakt-api-version": "2"},
        json={
            "refresh_token": refresh_token,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
            "grant_type": "refresh_token",
        },
    )
    assert resp.status_code == 200


@pytest.mark.parametrize("how", ["spent refresh token", "refresh answered 401"])
async def test_refused_refresh_parks_everything_until_a_new_login(rig: Rig, how: str) -> None:
    if how == "spent refresh token":
        spend_refresh_token(rig.fake, stored_pair(rig.store.path)[1])
    else:
        rig.fake.fail_next(1, status=401, path_prefix="/oauth/token")
    rig.fake.expire_access_tokens()
    rig.outbox.enqueue(watched_stop(rig.item))
    await rig.until(lambda: rig.sender.state is SenderState.LOGIN_NEEDED)
    assert rig.auth.state is AuthState.LOGIN_NEEDED
    assert not rig.store.path.exists()
    assert [r.status for r in rig.fake.requests("/oauth/token")][-1] == 401
    counts = rig.outbox.counts()
    assert (counts.pending, counts.dead) == (1, 0)  # nothing dropped
    assert rig.fake.history() == ()

    # The daemon's way back: a device login, then the queue drains.
    codes: list[DeviceCode] = []
    login = asyncio.create_task(
        login_until_done(
            rig.client,
            SystemClock(),
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            announce=codes.append,
        )
    )
    await rig.until(lambda: bool(codes))
    rig.fake.approve(codes[0].user_code)
    async with asyncio.timeout(10):
        token = await login
    rig.auth.set_token(token)
    await rig.until(lambda: rig.outbox.counts().pending == 0)
    assert len(rig.fake.history()) == 1
    assert stored_pair(rig.store.path)[0] == token.access_token


async def test_a_login_saved_by_another_process_is_used_not_deleted(rig: Rig) -> None:
    """`trakt-scrobbled login` ran while the daemon's own pair went bad: keep the new one."""
    spend_refresh_token(rig.fake, stored_pair(rig.store.path)[1])
    rig.fake.expire_access_tokens()
    fresh = rig.fake.issue_token()  # the login the other process saved
    rig.store.save(Token(fresh.access_token, fresh.refresh_token, fresh.created_at + 86400))
    rig.outbox.enqueue(watched_stop(rig.item))
    await rig.until(lambda: rig.outbox.counts().pending == 0)
    assert rig.auth.access_token() == fresh.access_token
    assert stored_pair(rig.store.path)[0] == fresh.access_token
    (spent,) = rig.fake.requests("/oauth/token")  # the other install's; none of ours
    assert not spent.headers["user-agent"].startswith("trakt-scrobbled/")
    assert len(rig.fake.history()) == 1


async def test_expired_codes_are_replaced_after_growing_pauses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The first pause is a tenth of the code's life (at least 1 s), then it doubles."""
    with FakeTrakt(device_expires_in=5) as fake:
        await _replace_codes(fake, caplog)


async def _replace_codes(fake: FakeTrakt, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    codes: list[DeviceCode] = []

    def announce(code: DeviceCode) -> None:
        codes.append(code)
        if len(codes) < 3:
            fake.expire_device_codes()  # nobody approves this one in time
        else:
            fake.approve(code.user_code)

    clock = SystemClock()
    async with TraktClient(fake.url, CLIENT_ID, PostRateLimiter(clock, 0.0)) as client:
        async with asyncio.timeout(15):
            token = await login_until_done(
                client,
                clock,
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                announce=announce,
            )
    assert authorized(fake, token.access_token) == 200
    assert len({c.user_code for c in codes}) == 3
    asked = fake.requests("/oauth/device/code")
    expired = [r for r in fake.requests("/oauth/device/token") if r.status == 410]
    assert len(asked) == 3 and len(expired) == 2
    assert asked[1].monotonic - expired[0].monotonic >= 1.0
    assert asked[2].monotonic - expired[1].monotonic >= 2.0  # the pause doubled
    assert "a new code in 1 s" in caplog.text
    assert "a new code in 2 s" in caplog.text


# --- the daemon as a subprocess ------------------------------------------------------------


def test_first_run_shows_the_code_to_log_and_systemd_then_sends_the_queue(
    tmp_path: Path, fake: FakeTrakt
) -> None:
    home = Home.create(tmp_path, fake.url)
    item = item_of(fake.add_movie("The Matrix", 1999))
    enqueue(home, watched_stop(item))
    with NotifySocket() as notify, Daemon(home, env=notify.env) as daemon:
        shown = daemon.wait_for_log(CODE_LOG)
        verification_url, user_code, link = shown.groups()
        (issued,) = fake.device_codes()
        assert user_code == issued.user_code
        assert verification_url == "https://trakt.tv/activate"
        assert link == f"https://trakt.tv/activate/{user_code}"
        notify.wait_for(rf"^STATUS=login needed: .*{user_code}.*$")
        notify.wait_for(r"^READY=1$")
        assert fake.requests("/scrobble") == []  # queued, waiting for the login
        assert daemon_queue(home).pending == 1

        fake.approve(user_code)
        daemon.wait_for_log(LOGGED_IN, since=shown.end())
        fake.wait_until(lambda: len(fake.history()) == 1, timeout=10)
        daemon.wait_until(lambda: daemon_queue(home).pending == 0)
        notify.wait_for(r"^STATUS=(?!login needed)")  # every earlier one said it was
        assert daemon.terminate() == 0
    (stop,) = fake.requests("/scrobble/stop")
    assert stop.status == 201
    assert stop.headers["authorization"] == f"Bearer {stored_pair(home.token_file)[0]}"
    assert "Traceback" not in daemon.stderr()


def test_an_expired_code_is_replaced_later_not_at_once(tmp_path: Path, fake: FakeTrakt) -> None:
    with Daemon(Home.create(tmp_path, fake.url)) as daemon:
        first = daemon.wait_for_log(CODE_LOG)
        fake.expire_device_codes()
        said = daemon.wait_for_log(r"expired.*a new code in (\d+) s", since=first.end())
        assert int(said.group(1)) >= 30
        assert "run the login" not in said.group(0)  # the daemon does that itself
        with pytest.raises(AssertionError):  # no hammering: no second code for a while
            fake.wait_for(lambda r: r.path == "/oauth/device/code", timeout=2.0, count=2)
        assert daemon.running
        assert daemon.terminate() == 0
    assert len(fake.requests("/oauth/device/code")) == 1
    assert [r.status for r in fake.requests("/oauth/device/token")][-1] == 410


def test_the_daemon_replaces_an_expired_code_after_its_retry_delay(tmp_path: Path) -> None:
    """The pause before a new code is a tenth of a code's life: 1 s for 10 s codes."""
    with FakeTrakt(device_expires_in=10) as fake:
        _replace_expired_code(tmp_path, fake)


def _replace_expired_code(tmp_path: Path, fake: FakeTrakt) -> None:
    home = Home.create(tmp_path, fake.url)
    with Daemon(home) as daemon:
        first = daemon.wait_for_log(CODE_LOG)
        fake.expire_device_codes()
        second = daemon.wait_for_log(CODE_LOG, timeout=4.0, since=first.end())
        assert second.group(2) != first.group(2)
        fake.approve(second.group(2))
        daemon.wait_for_log(LOGGED_IN, since=second.end())
        assert daemon.terminate() == 0
    asked = fake.requests("/oauth/device/code")
    expired = [r for r in fake.requests("/oauth/device/token") if r.status == 410]
    assert asked[1].monotonic - expired[0].monotonic >= 1.0


def test_restart_during_login_asks_for_a_new_code_that_works(
    tmp_path: Path, fake: FakeTrakt
) -> None:
    home = Home.create(tmp_path, fake.url)
    with Daemon(home, name="first") as first:
        old_code = first.wait_for_log(CODE_LOG).group(2)
        assert first.terminate() == 0
    assert "Traceback" not in first.stderr()
    assert not home.token_file.exists()
    with Daemon(home, name="second") as second:
        shown = second.wait_for_log(CODE_LOG)
        new_code = shown.group(2)
        assert new_code != old_code
        fake.approve(new_code)
        second.wait_for_log(LOGGED_IN, since=shown.end())
        assert second.terminate() == 0
    assert len(fake.requests("/oauth/device/code")) == 2
    assert authorized(fake, stored_pair(home.token_file)[0]) == 200


def test_fixing_the_client_secret_during_the_login_restarts_it(
    tmp_path: Path, fake: FakeTrakt
) -> None:
    home = Home.create(tmp_path, fake.url, client_secret="a-typo")
    with Daemon(home) as daemon:
        first = daemon.wait_for_log(CODE_LOG)
        refused = daemon.wait_for_log(r"refused the client secret", since=first.end())
        home.write_config(fake.url)  # the right secret
        daemon.signal(signal.SIGHUP)
        second = daemon.wait_for_log(CODE_LOG, timeout=4.0, since=refused.end())
        fake.approve(second.group(2))
        daemon.wait_for_log(LOGGED_IN, since=second.end())
        assert daemon.terminate() == 0


def test_a_login_from_the_command_line_ends_the_daemons_own_login(
    tmp_path: Path, fake: FakeTrakt
) -> None:
    home = Home.create(tmp_path, fake.url)
    item = item_of(fake.add_movie("The Matrix", 1999))
    enqueue(home, watched_stop(item))
    with Daemon(home) as daemon:
        shown = daemon.wait_for_log(CODE_LOG)
        pair = fake.issue_token()  # what `trakt-scrobbled login` saves
        TokenStore(home.token_file).save(
            Token(pair.access_token, pair.refresh_token, pair.created_at + pair.expires_in)
        )
        daemon.wait_for_log(LOGGED_IN, timeout=3.0, since=shown.end())
        fake.wait_until(lambda: len(fake.history()) == 1, timeout=3.0)
        assert daemon.terminate() == 0


def test_whole_life_refreshes_ahead_of_expiry_and_never_logs_a_secret(tmp_path: Path) -> None:
    """Login, a queued scrobble, two scheduled refreshes and a restart, all at DEBUG."""
    secret = "s3cret-" + "9" * 24
    lifetime = 4.0
    with FakeTrakt(
        client_secret=secret, token_lifetime=lifetime, device_interval=1, post_interval=1
    ) as fake:
        home = Home.create(tmp_path, fake.url, client_secret=secret)
        item = item_of(fake.add_movie("The Matrix", 1999))
        enqueue(home, watched_stop(item, play="before-login"))
        pairs: list[tuple[str, str]] = []
        with Daemon(home, verbose=True, name="first") as daemon:
            shown = daemon.wait_for_log(CODE_LOG)
            fake.approve(shown.group(2))
            mark = daemon.wait_for_log(LOGGED_IN, since=shown.end()).end()
            pairs.append(stored_pair(home.token_file))
            fake.wait_until(lambda: len(fake.history()) == 1, timeout=10)
            for _ in range(2):
                mark = daemon.wait_for_log(REFRESHED, timeout=lifetime + 2, since=mark).end()
                pairs.append(stored_pair(home.token_file))
            after_login = daemon.stderr()[shown.end() :]
            assert "Trakt login needed" not in after_login
            assert " ERROR " not in after_login
            assert daemon.terminate() == 0
        refreshes = fake.requests("/oauth/token")[:2]
        # Each refresh came before the token it replaced expired, and spent that pair's token.
        for refresh, (_, spent) in zip(refreshes, pairs[:2], strict=True):
            assert refresh.status == 200
            assert refresh.json["refresh_token"] == spent
        login_at = fake.requests("/oauth/device/token")[-1].wall
        assert refreshes[0].wall < login_at + lifetime
        assert refreshes[1].wall < refreshes[0].wall + lifetime
        assert len(set(pairs)) == 3

        # A restart keeps working with the refreshed pair from disk: no new login needed.
        enqueue(home, watched_stop(item_of(fake.add_movie("Heat", 1995)), play="after-restart"))
        with Daemon(home, verbose=True, name="second") as again:
            fake.wait_until(lambda: len(fake.history()) == 2, timeout=10)
            assert again.terminate() == 0
        assert len(fake.requests("/oauth/device/code")) == 1

        logs = daemon.stderr() + again.stderr()
        secrets = {secret}
        secrets |= {d.device_code for d in fake.device_codes()}
        secrets |= set(itertools.chain.from_iterable(pairs))
        secrets |= set(stored_pair(home.token_file))
        for r in fake.requests():
            if r.json and isinstance(r.json, dict):
                secrets |= {
                    str(r.json[k]) for k in ("code", "refresh_token", "token") if k in r.json
                }
            if "authorization" in r.headers:
                secrets.add(r.headers["authorization"].removeprefix("Bearer "))
    assert "DEBUG" in logs  # the test looked at debug output
    assert len(secrets) >= 6
    leaked = sum(1 for s in secrets if s in logs)
    assert leaked == 0, f"{leaked} secret value(s) in the log"
    assert shown.group(2) in logs  # the user code is no secret
