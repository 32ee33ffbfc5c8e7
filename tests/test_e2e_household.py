"""The household end to end: the real daemon, Plex webhooks from two Plex accounts, one fake
Trakt that knows each user by token; each play lands on its own Trakt account only."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.daemon import Daemon, Home, run_cli
from tests.fake_plex import KID, OWNER, OWNER_TOKEN, PHONE, TV, FakePlex
from tests.fake_trakt import FakeTrakt
from tests.plex_payloads import jpeg, movie, multipart, webhook
from trakt_scrobbled.clock import SystemClock
from trakt_scrobbled.events import Ids, MediaType, Scrobble, ScrobbleVerb, TraktItem
from trakt_scrobbled.outbox import Outbox, accounts_with_rows
from trakt_scrobbled.store import open_db
from trakt_scrobbled.trakt.auth import Token, TokenStore

SECRET = "k3rv9b2nq8x1m4z7w5y6"
DURATION_MS = 200_000
PLEX = f'[mpv]\nenabled = false\n\n[plex]\nenabled = true\nsecret = "{SECRET}"\n'
PLEX_HOUSE = PLEX + 'accounts = ["Alice", "Bob", "Carol"]\n'
ALICE_BOB = '\n[accounts.alice]\nplex = ["Alice"]\n\n[accounts.bob]\nplex = ["Bob"]\n'


@pytest.fixture
def fake() -> Iterator[FakeTrakt]:
    with FakeTrakt() as fake:
        fake.add_movie("The Matrix", 1999, trakt=481, imdb="tt0133093", tmdb=603)
        for name in ("alice", "bob", "carol"):
            fake.add_user(name)
        yield fake


def log_in_as(fake: FakeTrakt, home: Home, account: str) -> None:
    pair = fake.issue_token(account)
    TokenStore(home.state_dir / f"token-{account}.json").save(
        Token(pair.access_token, pair.refresh_token, pair.created_at + pair.expires_in)
    )


def post(home: Home, account: str, account_id: int, player: str, event: str) -> int:
    payload = webhook(
        event,
        movie(view_offset=0, duration=DURATION_MS),
        account=account,
        account_id=account_id,
        user=False,
        player_uuid=player,
    )
    body, content_type = multipart(payload, thumb=jpeg())
    url = f"http://127.0.0.1:{home.server_port}/plex/{SECRET}"
    return httpx.post(url, content=body, headers={"Content-Type": content_type}).status_code


def _trakt_id(item: object) -> int:
    trakt = getattr(getattr(item, "ids", None), "trakt", None)
    assert isinstance(trakt, int), item
    return trakt


def status(home: Home) -> dict[str, object]:
    result = run_cli(home, "status", "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_two_plex_accounts_land_each_on_its_own_trakt_account_only(
    tmp_path: Path, fake: FakeTrakt
) -> None:
    home = Home.create(tmp_path, fake.url, players=PLEX_HOUSE, extra=ALICE_BOB)
    log_in_as(fake, home, "alice")
    log_in_as(fake, home, "bob")
    with Daemon(home) as daemon:
        daemon.wait_for_log("ready")
        assert post(home, "Alice", 11, "player-a", "media.play") == 200
        assert post(home, "Bob", 12, "player-b", "media.play") == 200
        fake.wait_for(lambda r: r.path == "/scrobble/start" and r.user == "alice", timeout=15)
        fake.wait_for(lambda r: r.path == "/scrobble/start" and r.user == "bob", timeout=15)
        # Carol has no account and there is no default: not scrobbled, and status says why.
        assert post(home, "Carol", 13, "player-c", "media.play") == 200
        daemon.wait_for_log("player-c: not scrobbled: no \\[accounts\\] rule routes", 15)
        assert post(home, "Alice", 11, "player-a", "media.pause") == 200
        fake.wait_for(lambda r: r.path == "/scrobble/stop" and r.user == "alice", timeout=15)
        report = status(home)
        ignored = report["ignored"]
        assert isinstance(ignored, list)
        assert any('no [accounts] rule routes plex user "Carol"' in i["reason"] for i in ignored)
        accounts = report["accounts"]
        assert isinstance(accounts, list)
        assert {a["name"] for a in accounts} == {"alice", "bob"}
        assert all(a["logged_in"] for a in accounts)
    scrobbles = [r for r in fake.requests("/scrobble") if r.status == 201]
    by_user = sorted((r.user, r.path) for r in scrobbles)
    assert by_user == [
        ("alice", "/scrobble/start"),
        ("alice", "/scrobble/stop"),
        ("bob", "/scrobble/start"),
    ]
    assert not any(r.user in ("carol", "me") for r in fake.requests("/scrobble"))


def test_plex_live_plays_of_two_accounts_land_each_on_its_own_trakt_account(
    tmp_path: Path, fake: FakeTrakt
) -> None:
    """Live mode (no Plex Pass) routes by the account the server names for each session."""
    fake.add_user("kid")
    with FakePlex() as plex:
        players = (
            '[mpv]\nenabled = false\n\n[plex]\nenabled = true\nmode = "live"\n'
            f'url = "{plex.url}"\ntoken = "{OWNER_TOKEN}"\naccounts = ["{OWNER.title}", "kid"]\n'
        )
        accounts = f'\n[accounts.alice]\nplex = ["{OWNER.title}"]\n\n[accounts.kid]\nplex = ["3"]\n'
        home = Home.create(tmp_path, fake.url, players=players, extra=accounts)
        log_in_as(fake, home, "alice")
        log_in_as(fake, home, "kid")
        with Daemon(home) as daemon:
            daemon.wait_for_log("following the Plex server at 127.0.0.1 live", timeout=15)
            owners = plex.play("1001", account=OWNER, client=TV)
            kids = plex.play("1001", account=KID, client=PHONE)  # a rule by account id
            fake.wait_for(lambda r: r.path == "/scrobble/start" and r.user == "alice", 15)
            fake.wait_for(lambda r: r.path == "/scrobble/start" and r.user == "kid", 15)
            plex.pause(kids, 100_000)
            fake.wait_for(lambda r: r.path == "/scrobble/stop" and r.user == "kid", 15)
            plex.stop_session(owners, 100_000)
            fake.wait_for(lambda r: r.path == "/scrobble/stop" and r.user == "alice", 15)
    scrobbles = sorted((r.user, r.path) for r in fake.requests("/scrobble") if r.status == 201)
    assert scrobbles == [
        ("alice", "/scrobble/start"),
        ("alice", "/scrobble/stop"),
        ("kid", "/scrobble/start"),
        ("kid", "/scrobble/stop"),
    ]


def test_a_config_edit_adding_an_account_starts_its_login(tmp_path: Path, fake: FakeTrakt) -> None:
    home = Home.create(
        tmp_path, fake.url, players=PLEX_HOUSE, extra='\n[accounts.alice]\nplex = ["Alice"]\n'
    )
    log_in_as(fake, home, "alice")
    with Daemon(home) as daemon:
        daemon.wait_for_log("ready")
        assert fake.requests("/oauth/device/code") == []  # alice is logged in: no login
        mark = daemon.mark()
        home.write_config(
            fake.url,
            players=PLEX_HOUSE,
            extra='\n[accounts.alice]\nplex = ["Alice"]\n\n[accounts.carol]\nplex = ["Carol"]\n',
        )
        daemon.wait_for_log("account carol: its lane started", 15, since=mark)
        line = daemon.wait_for_log(r"account carol: Trakt login needed: .* code (\S+)", 15)
        code = line.group(1)
        assert fake.requests("/oauth/device/code")
        carol = next(a for a in status(home)["accounts"] if a["name"] == "carol")  # type: ignore[attr-defined]
        assert carol["logged_in"] is False
        assert carol["login_code"]["user_code"] == code
        # Carol approves the code at "Trakt": the token is hers, and her Plex plays reach her
        # Trakt account only.
        fake.approve(code, user="carol")
        daemon.wait_for_log("account carol: logged in to Trakt", 20)
        assert (home.state_dir / "token-carol.json").exists()
        assert post(home, "Carol", 13, "player-c", "media.play") == 200
        fake.wait_for(lambda r: r.path == "/scrobble/start" and r.status == 201, timeout=15)
    starts = [r.user for r in fake.requests("/scrobble/start") if r.status == 201]
    assert starts == ["carol"]


def test_sigkill_during_two_accounts_backlogs_loses_nothing_and_crosses_nothing(
    tmp_path: Path, fake: FakeTrakt
) -> None:
    n = 6
    movies = [fake.add_movie(f"Film {i}", 1990 + i, trakt=9000 + i) for i in range(2 * n)]
    home = Home.create(tmp_path, fake.url, players=PLEX_HOUSE, extra=ALICE_BOB)
    log_in_as(fake, home, "alice")
    log_in_as(fake, home, "bob")
    home.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    conn = open_db(home.db_file)
    wanted: dict[str, set[int]] = {"alice": set(), "bob": set()}
    for i, m in enumerate(movies):
        account = "alice" if i % 2 == 0 else "bob"
        item = TraktItem(MediaType.MOVIE, Ids(trakt=m.ids.trakt), title=m.title)
        Outbox(conn, SystemClock(), account=account).enqueue(
            Scrobble(ScrobbleVerb.STOP, f"{account}-{i}", item, 95.0, watched=True)
        )
        wanted[account].add(_trakt_id(m))
    conn.close()
    with Daemon(home) as daemon:
        daemon.wait_for_log("ready")
        fake.wait_for(lambda r: r.path == "/scrobble/stop" and r.status == 201, 15, count=4)
        daemon.kill()
    with Daemon(home, name="again") as daemon:
        daemon.wait_for_log("ready")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            conn = open_db(home.db_file)
            try:
                left = accounts_with_rows(conn)
            finally:
                conn.close()
            if not left:
                break
            time.sleep(0.2)
        assert left == {}
        daemon.signal(signal.SIGTERM)
        daemon.wait_exit(10)
    for account, ids in wanted.items():
        got = [_trakt_id(e.item) for e in fake.history(account)]
        assert sorted(got) == sorted(ids), account  # every watch once, none lost, none doubled
    assert fake.history() == () and fake.history("carol") == ()


def test_queue_status_logout_per_account_and_a_removed_account_keeps_its_rows(
    tmp_path: Path, fake: FakeTrakt
) -> None:
    home = Home.create(tmp_path, fake.url, players=PLEX_HOUSE, extra=ALICE_BOB)
    log_in_as(fake, home, "alice")  # bob is not logged in: his rows wait
    home.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    conn = open_db(home.db_file)
    item = TraktItem(MediaType.MOVIE, Ids(trakt=481), title="The Matrix")
    bob = Outbox(conn, SystemClock(), account="bob")
    for n in range(2):
        bob.enqueue(Scrobble(ScrobbleVerb.STOP, f"bob-{n}", item, 95.0, watched=True))
    conn.close()

    unknown = run_cli(home, "login", "--account", "nobody")
    assert unknown.returncode != 0
    assert "no account 'nobody' in the config (accounts: alice, bob)" in unknown.stderr

    with Daemon(home) as daemon:
        daemon.wait_for_log("ready")
        rows = run_cli(home, "queue", "--account", "bob", "--json")
        assert rows.returncode == 0, rows.stderr
        assert [json.loads(line)["account"] for line in rows.stdout.splitlines()] == ["bob"] * 2
        assert run_cli(home, "queue", "--account", "alice").stdout.strip() == "the queue is empty"
        result = run_cli(home, "status", "--account", "bob")
        assert result.returncode == 0, result.stderr
        assert "Account:  bob: 2 pending" in result.stdout
        assert "login needed" in result.stdout
        assert "Account:  alice" not in result.stdout

        # bob leaves the household: his lane stops, his rows stay (and say so).
        mark = daemon.mark()
        home.write_config(
            fake.url, players=PLEX_HOUSE, extra='\n[accounts.alice]\nplex = ["Alice"]\n'
        )
        daemon.wait_for_log(
            "account bob removed from the config: its 2 queued scrobble\\(s\\) are kept",
            15,
            since=mark,
        )
        report = status(home)
        assert report["accounts_removed"] == {"bob": 2}
        assert "bob" in run_cli(home, "status").stdout  # "bob: not in the config; its 2 row(s)"
        everything = run_cli(home, "queue", "--json")
        assert [json.loads(line)["account"] for line in everything.stdout.splitlines()] == [
            "bob",
            "bob",
        ]

        # alice logs out: only her lane stops using its login.
        out = run_cli(home, "logout", "--account", "alice")
        assert out.returncode == 0, out.stderr
        assert not (home.state_dir / "token-alice.json").exists()
        alice = next(a for a in status(home)["accounts"] if a["name"] == "alice")  # type: ignore[attr-defined]
        assert alice["logged_in"] is False
    conn = open_db(home.db_file)
    try:
        assert accounts_with_rows(conn) == {"bob": 2}
    finally:
        conn.close()


def test_doctor_checks_each_accounts_login(tmp_path: Path, fake: FakeTrakt) -> None:
    home = Home.create(tmp_path, fake.url, players=PLEX_HOUSE, extra=ALICE_BOB)
    log_in_as(fake, home, "alice")
    report = run_cli(home, "doctor")
    assert "login alice: token valid until" in report.stdout
    assert "login alice: Trakt accepts the login" in report.stdout
    assert "login bob: not logged in" in report.stdout
    assert "trakt-scrobbled login --account bob" in report.stdout
    assert "no token in " + str(home.token_file) not in report.stdout  # no single account
    only = run_cli(home, "doctor", "--account", "alice")
    assert "login alice: Trakt accepts the login" in only.stdout
    assert "login bob" not in only.stdout
    wrong = run_cli(home, "doctor", "--account", "zed")
    assert "no account 'zed' in the config" in wrong.stdout


def test_a_default_account_takes_over_the_single_accounts_login_and_queue(
    tmp_path: Path, fake: FakeTrakt
) -> None:
    from tests.daemon import enqueue, log_in

    home = Home.create(tmp_path, fake.url, players=PLEX)
    log_in(fake, home)  # today's token.json, of the fake's main user
    item = TraktItem(MediaType.MOVIE, Ids(trakt=481), title="The Matrix")
    home.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    enqueue(home, Scrobble(ScrobbleVerb.STOP, "old-1", item, 95.0, watched=True))
    login = home.token_file.read_bytes()
    home.write_config(
        fake.url,
        players=PLEX_HOUSE,
        extra='\n[accounts.alice]\ndefault = true\nplex = ["Alice"]\n',
    )
    with Daemon(home) as daemon:
        daemon.wait_for_log("ready")
        fake.wait_for(lambda r: r.path == "/scrobble/stop" and r.status == 201, timeout=15)
        assert (home.state_dir / "token-alice.json").read_bytes() == login
        assert not home.token_file.exists()
        report = status(home)
        assert report["accounts"][0]["logged_in"] is True  # type: ignore[index]
        assert fake.requests("/oauth/device/code") == []  # no login asked for: none lost
        assert "login needed" not in run_cli(home, "status").stdout
    assert len(fake.history()) == 1
