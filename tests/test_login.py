"""`trakt-scrobbled login` and `logout` as a user runs them, against the fake Trakt over HTTP."""

from __future__ import annotations

import itertools
import json
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.daemon import CLIENT_ID, Daemon, Home, free_port, run_cli
from tests.fake_trakt import FakeTrakt, TokenPair
from trakt_scrobbled.trakt.auth import Token, TokenStore

CODE_LINE = re.compile(r"enter the code:\s+(\w+)")
WAITING = "Waiting for approval"


@pytest.fixture
def fake() -> Iterator[FakeTrakt]:
    """Trakt's device flow at its quickest: a poll a second."""
    with FakeTrakt(device_interval=1, post_interval=0) as fake:
        yield fake


def start_login(home: Home) -> tuple[Daemon, str]:
    """`trakt-scrobbled login` started and showing its code; returns it and the user code."""
    login = Daemon(home, ("login",), name="login").start()
    login.wait_for_log(WAITING, stream="stdout")
    found = CODE_LINE.search(login.stdout())
    assert found is not None, login.stdout()
    return login, found.group(1)


def authorized(fake: FakeTrakt, access_token: str) -> int:
    """The status Trakt answers an authenticated call made with `access_token`."""
    resp = httpx.get(
        f"{fake.url}/sync/history",
        headers={
            "trakt-api-key": CLIENT_ID,
            "trakt-api-version": "2",
            "Authorization": f"Bearer {access_token}",
        },
    )
    return resp.status_code


def save_pair(home: Home, pair: TokenPair) -> None:
    TokenStore(home.token_file).save(
        Token(pair.access_token, pair.refresh_token, pair.created_at + pair.expires_in)
    )


def test_login_shows_code_link_and_qr_and_saves_the_token_privately(
    tmp_path: Path, fake: FakeTrakt
) -> None:
    home = Home.create(tmp_path, fake.url)
    with start_login(home)[0] as login:
        out = login.stdout()
        (issued,) = fake.device_codes()
        assert f"enter the code:  {issued.user_code}" in out
        assert "https://trakt.tv/activate " in out  # the verification_url Trakt gave
        assert f"https://trakt.tv/activate/{issued.user_code}" in out
        plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
        qr = [line for line in plain.splitlines() if set(line) <= set("█▀▄ ") and line.strip()]
        assert len(qr) >= 15, out  # a QR code drawn in block characters
        fake.approve(issued.user_code)
        assert login.wait_exit() == 0, login.stderr()
    assert "Logged in" in login.stdout()
    assert stat.S_IMODE(home.token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.state_dir.stat().st_mode) == 0o700
    saved = json.loads(home.token_file.read_text())
    assert authorized(fake, saved["access_token"]) == 200
    polls = fake.requests("/oauth/device/token")
    assert [r.status for r in polls][-1] == 200
    assert all(r.json["code"] == issued.device_code for r in polls)
    assert all(b.monotonic - a.monotonic >= 0.95 for a, b in itertools.pairwise(polls))
    assert saved["access_token"] not in login.stdout() + login.stderr()


def test_denied_login_fails_clearly(tmp_path: Path, fake: FakeTrakt) -> None:
    login, code = start_login(Home.create(tmp_path, fake.url))
    with login:
        fake.deny(code)
        assert login.wait_exit() == 1
    assert "denied" in login.stderr()
    assert "run the login again" in login.stderr()
    assert "Traceback" not in login.stderr()
    assert not Home(tmp_path).token_file.exists()


def test_code_expired_at_trakt_asks_to_run_it_again(tmp_path: Path, fake: FakeTrakt) -> None:
    login, _ = start_login(Home.create(tmp_path, fake.url))
    with login:
        fake.expire_device_codes()
        assert login.wait_exit() == 1
    assert [r.status for r in fake.requests("/oauth/device/token")][-1] == 410
    assert "expired" in login.stderr()
    assert "run the login again" in login.stderr()
    assert "Traceback" not in login.stderr()


def test_polling_stops_when_expires_in_is_reached(tmp_path: Path) -> None:
    with FakeTrakt(device_interval=1, device_expires_in=2, post_interval=0) as fake:
        login, _ = start_login(Home.create(tmp_path, fake.url))
        with login:
            assert login.wait_exit() == 1
        polls = fake.requests("/oauth/device/token")
    assert "expired" in login.stderr()
    assert "run the login again" in login.stderr()
    assert 1 <= len(polls) <= 2  # a poll a second for the code's 2 s, then it gave up


@pytest.mark.parametrize(
    ("status", "words"), [(404, "does not know this code"), (409, "already used")]
)
def test_unknown_or_used_code_fails_clearly(
    tmp_path: Path, fake: FakeTrakt, status: int, words: str
) -> None:
    fake.fail_next(1, status=status, path_prefix="/oauth/device/token")
    login = Daemon(Home.create(tmp_path, fake.url), ("login",), name="login")
    with login.start():
        assert login.wait_exit() == 1
    assert words in login.stderr()
    assert "run the login again" in login.stderr()
    assert "Traceback" not in login.stderr()


def test_slow_down_makes_it_poll_slower(tmp_path: Path, fake: FakeTrakt) -> None:
    fake.fail_next(1, status=429, retry_after=1, path_prefix="/oauth/device/token")
    login, code = start_login(Home.create(tmp_path, fake.url))
    with login:
        fake.wait_for(lambda r: r.path == "/oauth/device/token", timeout=10, count=2)
        fake.approve(code)
        assert login.wait_exit() == 0, login.stderr()
    polls = fake.requests("/oauth/device/token")
    assert polls[0].status == 429
    gaps = [b.monotonic - a.monotonic for a, b in itertools.pairwise(polls)]
    # The code's interval is 1 s; after "slow down" every gap is a second longer, for good.
    assert all(gap >= 1.9 for gap in gaps), gaps
    assert polls[-1].status == 200


def test_ctrl_c_cancels_cleanly(tmp_path: Path, fake: FakeTrakt) -> None:
    login, _ = start_login(Home.create(tmp_path, fake.url))
    with login:
        assert login.interrupt() == 130
    assert "cancelled" in login.stderr()
    assert "Traceback" not in login.stderr()
    assert not Home(tmp_path).token_file.exists()


@pytest.mark.parametrize(
    ("client_id", "client_secret", "named"),
    [
        (None, None, "client_id and client_secret"),
        (CLIENT_ID, None, "client_secret"),
        (None, "test-secret", "client_id"),
    ],
)
def test_login_without_client_credentials_names_the_keys(
    tmp_path: Path, fake: FakeTrakt, client_id: str | None, client_secret: str | None, named: str
) -> None:
    home = Home.create(tmp_path, fake.url, client_id=client_id, client_secret=client_secret)
    result = run_cli(home, "login")
    assert result.returncode == 1
    assert f"set [trakt] {named} " in result.stderr
    assert "TRAKT_CLIENT_ID" in result.stderr
    assert "Traceback" not in result.stderr
    assert fake.requests() == []


def test_login_when_trakt_is_unreachable_fails_clearly(tmp_path: Path) -> None:
    home = Home.create(tmp_path, f"http://127.0.0.1:{free_port()}")
    result = run_cli(home, "login")
    assert result.returncode == 1
    assert "could not start the login" in result.stderr
    assert "Traceback" not in result.stderr


def test_logout_revokes_the_token_and_deletes_it(tmp_path: Path, fake: FakeTrakt) -> None:
    home = Home.create(tmp_path, fake.url)
    pair = fake.issue_token()
    save_pair(home, pair)
    assert authorized(fake, pair.access_token) == 200
    result = run_cli(home, "logout")
    assert result.returncode == 0, result.stderr
    assert "revoked" in result.stdout
    assert not home.token_file.exists()
    assert authorized(fake, pair.access_token) == 401
    (revoke,) = fake.requests("/oauth/revoke")
    assert revoke.status == 200


def test_logout_with_trakt_down_deletes_the_token_but_says_it_was_not_revoked(
    tmp_path: Path,
) -> None:
    home = Home.create(tmp_path, f"http://127.0.0.1:{free_port()}")
    save_pair(home, TokenPair("a" * 64, "r" * 64, 86400, 1_700_000_000))
    result = run_cli(home, "logout")
    assert result.returncode == 1
    assert not home.token_file.exists()
    assert "not revoked" in result.stderr
    assert "https://trakt.tv/oauth/authorized_applications" in result.stderr
    assert "a" * 64 not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_logout_when_not_logged_in_says_so(tmp_path: Path, fake: FakeTrakt) -> None:
    result = run_cli(Home.create(tmp_path, fake.url), "logout")
    assert result.returncode == 0
    assert "not logged in" in result.stdout
    assert fake.requests() == []
