"""Alerts where a person is not looking at a terminal: a real dbus-daemon with a notification
server of the test's own; and Trakt's whole-account answers (420/423/426) parking the queue
with one message instead of a dead letter per row."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.daemon import Daemon, Home, run_cli
from tests.fake_trakt import FakeTrakt
from tests.notify_server import session_bus
from trakt_scrobbled.alerts import Alert, AlertKind, Alerts
from trakt_scrobbled.clock import SystemClock
from trakt_scrobbled.config import NotifyConfig
from trakt_scrobbled.events import Ids, MediaType, Scrobble, ScrobbleVerb, TraktItem
from trakt_scrobbled.outbox import Outbox, RowState
from trakt_scrobbled.sender import Sender, SenderState
from trakt_scrobbled.store import open_db
from trakt_scrobbled.trakt.auth import Auth, Token, TokenStore
from trakt_scrobbled.trakt.client import TraktClient
from trakt_scrobbled.trakt.ratelimit import PostRateLimiter

pytestmark = [pytest.mark.timeout(90)]

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-secret"


async def test_desktop_notifications_reach_the_notification_daemon() -> None:
    async with session_bus() as (address, server):
        alerts = Alerts(NotifyConfig(), {"DBUS_SESSION_BUS_ADDRESS": address})
        try:
            await alerts.send(Alert(AlertKind.LOGIN, "Trakt login needed: code AB12", "Open it"))
            await alerts.send(Alert(AlertKind.DEAD, "Trakt refused a scrobble", "The Matrix"))
            await alerts.send(Alert(AlertKind.LOGIN, "Trakt login needed: code CD34", "Open it"))
            first, dead, second = await server.wait_for(3)
        finally:
            await alerts.aclose()
    assert (first.app, first.title, first.hints["urgency"]) == (
        "trakt-scrobbled",
        "Trakt login needed: code AB12",
        2,
    )
    assert dead.hints["urgency"] == 1 and dead.replaces == 0
    assert second.replaces == first.id, "a new login code replaces the old notification"


async def test_no_session_bus_or_desktop_off_is_silent_and_no_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="trakt_scrobbled")
    async with session_bus() as (address, server):
        off = Alerts(NotifyConfig(desktop=False), {"DBUS_SESSION_BUS_ADDRESS": address})
        await off.send(Alert(AlertKind.DEAD, "x", "y"))
        assert server.shown == []
    gone = Alerts(NotifyConfig(), {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus"})
    await gone.send(Alert(AlertKind.DEAD, "x", "y"))
    await gone.send(Alert(AlertKind.DEAD, "x", "y"))
    said = [r for r in caplog.records if r.name == "trakt_scrobbled.alerts"]
    assert [r.levelname for r in said] == ["WARNING", "DEBUG"], "said once"
    await gone.aclose()


async def test_an_apprise_url_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    secret_url = "json://127.0.0.1:9/tok3n-s3cret"
    alerts = Alerts(NotifyConfig(desktop=False, apprise=(secret_url,)), {})
    await alerts.send(Alert(AlertKind.DEAD, "x", "y"))
    assert "tok3n-s3cret" not in caplog.text
    assert "notify: apprise notification not shown" in caplog.text


# --- whole-account answers park the queue ------------------------------------------------------


def movie_item(fake: FakeTrakt) -> TraktItem:
    movie = fake.add_movie("The Matrix", 1999, imdb="tt0133093")
    return TraktItem(MediaType.MOVIE, Ids(trakt=movie.ids.trakt), title="The Matrix", year=1999)


ParkedRig = tuple[FakeTrakt, Outbox, Sender, list[Alert]]


@pytest.fixture
async def parked_rig(
    tmp_path: Path,
) -> AsyncIterator[tuple[FakeTrakt, Outbox, Sender, list[Alert]]]:
    clock = SystemClock()
    alerts: list[Alert] = []
    with FakeTrakt(post_interval=0.1) as fake:
        store = TokenStore(tmp_path / "token.json")
        pair = fake.issue_token()
        store.save(Token(pair.access_token, pair.refresh_token, pair.created_at + pair.expires_in))
        conn = open_db(tmp_path / "state.db")
        outbox = Outbox(conn, clock)
        auth = Auth(store, clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        client = TraktClient(
            fake.url, CLIENT_ID, PostRateLimiter(clock, 0.1), token=auth.access_token, timeout=2.0
        )
        sender = Sender(
            outbox, client, auth, clock, rng=random.Random(1), backoff_base=0.1,
            on_alert=alerts.append,
        )  # fmt: skip
        task = asyncio.create_task(sender.run())
        try:
            yield fake, outbox, sender, alerts
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await client.aclose()
            conn.close()


async def until(condition: object, limit: float = 10.0) -> None:
    async with asyncio.timeout(limit):
        while not condition():  # type: ignore[operator]  # noqa: ASYNC110 - SQLite has no event
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("status", [420, 423, 426])
async def test_a_whole_account_answer_parks_the_queue_said_once(
    parked_rig: ParkedRig, status: int
) -> None:
    fake, outbox, sender, alerts = parked_rig
    item = movie_item(fake)
    fake.fail_next(1, status=status, path_prefix="/scrobble")
    for play in ("a", "b"):
        outbox.enqueue(Scrobble(ScrobbleVerb.START, play, item, 10.0))
    await until(lambda: sender.state is SenderState.ACCOUNT_PARKED)
    outbox.enqueue(Scrobble(ScrobbleVerb.START, "c", item, 10.0))  # a new play meanwhile
    with pytest.raises(AssertionError):  # nothing more is sent while parked
        await fake.wait_for_async(lambda r: r.path.startswith("/scrobble"), timeout=1.0, count=2)
    assert outbox.counts().pending == 3 and outbox.rows(RowState.DEAD) == []
    assert [a.kind for a in alerts] == [AlertKind.PARKED]
    assert str(status) in alerts[0].body and str(status) in (sender.last_error or "")
    sender.unpark()  # what a reload does, once the account is fixed
    await until(lambda: outbox.counts().pending == 0)
    assert [r.status for r in fake.requests("/scrobble")] == [status, 201, 201, 201]
    assert [a.kind for a in alerts] == [AlertKind.PARKED], "no dead letter, no second alert"


async def test_a_dead_letter_is_an_alert(
    parked_rig: ParkedRig,
) -> None:
    fake, outbox, _, alerts = parked_rig
    item = movie_item(fake)
    fake.fail_next(1, status=404, path_prefix="/scrobble")
    outbox.enqueue(Scrobble(ScrobbleVerb.START, "a", item, 10.0))
    await until(lambda: outbox.counts().dead == 1)
    (alert,) = alerts
    assert alert.kind is AlertKind.DEAD and "The Matrix (1999)" in alert.body


# --- the daemon, end to end ---------------------------------------------------------------------


async def test_the_daemon_notifies_a_login_with_its_code(tmp_path: Path) -> None:
    with FakeTrakt() as fake:
        home = Home.create(tmp_path, fake.url)
        async with session_bus() as (address, server):
            daemon = Daemon(home, env={"DBUS_SESSION_BUS_ADDRESS": address})
            with daemon:
                (shown,) = await server.wait_for(1, limit=30)
                (issued,) = fake.device_codes()
                assert issued.user_code in shown.title and issued.user_code in shown.body
                assert shown.hints["urgency"] == 2
                status = await asyncio.to_thread(run_cli, home, "status", "--json")
                assert json.loads(status.stdout)["auth"]["login"]["user_code"] == issued.user_code
                assert daemon.terminate() == 0
            assert not re.search(r"notify: .* not shown", daemon.stderr())


async def test_apprise_pushes_to_a_real_http_endpoint(caplog: pytest.LogCaptureFixture) -> None:
    """Apprise's json:// service POSTs the alert; a tiny aiohttp server of the test receives it.
    The URL's secret part (the path here) never reaches a log, even when the push fails."""
    pytest.importorskip("apprise", reason="the [notify] extra is not installed")
    from aiohttp import web

    received: list[dict[str, object]] = []
    got = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        got.set()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook-s3cret", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        url = f"json://127.0.0.1:{port}/hook-s3cret"
        alerts = Alerts(NotifyConfig(desktop=False, apprise=(url,)), {})
        await alerts.send(Alert(AlertKind.PARKED, "Trakt scrobbles on hold", "426: VIP needed"))
        async with asyncio.timeout(10):
            await got.wait()
        assert received[0]["title"] == "Trakt scrobbles on hold"
        assert received[0]["message"] == "426: VIP needed"
    finally:
        await runner.cleanup()
    await alerts.send(Alert(AlertKind.DEAD, "x", "y"))  # the server is gone now
    assert "notify: apprise notification not shown" in caplog.text
    assert "s3cret" not in caplog.text
