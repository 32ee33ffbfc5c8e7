"""`trakt-scrobbled plex login`: Plex's PIN flow against the fake plex.tv, end to end."""

from __future__ import annotations

import json
import stat
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clocks import ManualClock
from tests.daemon import Daemon, Home
from tests.fake_plex import FRIEND, OWNER_TOKEN, FakePlex
from trakt_scrobbled.config import PlexConfig
from trakt_scrobbled.players.plex_live import LiveCredentials
from trakt_scrobbled.plextv import (
    PlexLogin,
    PlexLoginFailed,
    PlexLoginStore,
    auth_url,
    live_credentials,
    log_in,
)

pytestmark = [pytest.mark.timeout(60)]


@pytest.fixture
def plex() -> Iterator[FakePlex]:
    with FakePlex() as fake:
        yield fake


def plex_section(plex: FakePlex, extra: str = "") -> str:
    return (
        '[mpv]\nenabled = false\n\n[plex]\nenabled = true\nmode = "live"\n'
        f'plex_tv_url = "{plex.url}"\n{extra}'
    )


def test_plex_login_signs_in_with_a_pin_and_stores_the_server(
    tmp_path: Path, plex: FakePlex
) -> None:
    home = Home.create(tmp_path, "http://127.0.0.1:9", players=plex_section(plex))
    with Daemon(home, ("plex", "login"), name="plex-login") as login:
        found = login.wait_for_log(r"\(code (\w+);", stream="stdout", timeout=20)
        plex.approve_pin(found.group(1))
        assert login.wait_exit(20) == 0
    out = login.stdout() + login.stderr()
    assert "Logged in to Plex as alice. Server: Office at " + plex.url in out
    assert OWNER_TOKEN not in out

    stored = home.state_dir / "plex.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    data = json.loads(stored.read_text())
    # the server's address that answers (the local one), not the unreachable public one
    assert (data["url"], data["token"], data["account"]) == (plex.url, OWNER_TOKEN, "alice")

    # Plex's PIN flow as documented: a strong PIN, our product and a stable client id.
    [(_, _, pin_headers)] = [r for r in plex.requests if r[:2] == ("POST", "/api/v2/pins")]
    assert pin_headers["X-Plex-Product"] == "trakt-scrobbled"
    assert pin_headers["X-Plex-Client-Identifier"] == data["client_identifier"]
    assert all(p.strong for p in plex.pins.values())
    link = found.string[found.string.index("https://app.plex.tv/auth#?") :].split()[0]
    query = urllib.parse.parse_qs(link.split("#?", 1)[1])
    assert query["code"] == [found.group(1)]
    assert query["clientID"] == [data["client_identifier"]]


async def test_log_in_with_a_configured_url_and_a_named_server(
    tmp_path: Path, plex: FakePlex
) -> None:
    store = PlexLoginStore(tmp_path / "plex.json")
    said: list[str] = []

    def say(text: str) -> None:
        said.append(text)
        plex.approve_pin(text.split("(code ")[1].split(";")[0], FRIEND)

    config = PlexConfig(enabled=True, url=plex.url, plex_tv_url=plex.url)
    login = await log_in(config, store, ManualClock(), say, poll_every=0.01)
    assert (login.url, login.token, login.account) == (plex.url, FRIEND.token, "bob")
    assert store.load() == login

    with pytest.raises(PlexLoginFailed, match=r"no server named 'Attic'.*there are: Office"):
        await log_in(
            PlexConfig(plex_tv_url=plex.url), store, ManualClock(), say, server_name="Attic"
        )


async def test_nobody_signing_in_ends_the_login(tmp_path: Path, plex: FakePlex) -> None:
    clock = ManualClock()
    store = PlexLoginStore(tmp_path / "plex.json")
    with pytest.raises(PlexLoginFailed, match="nobody signed in"):
        await log_in(PlexConfig(plex_tv_url=plex.url), store, clock, lambda _: None)
    assert not store.path.exists()


def test_the_config_wins_over_the_stored_login(tmp_path: Path) -> None:
    store = PlexLoginStore(tmp_path / "plex.json")
    store.save(PlexLogin("cid", "stored-token", "http://plex.lan:32400", "Office", "9", "bob"))
    stored = live_credentials(PlexConfig(), store)
    assert stored == LiveCredentials("http://plex.lan:32400", "stored-token", "cid", "9", "bob")
    mine = live_credentials(PlexConfig(url="http://other:32400", token="conf-token"), store)
    assert mine == LiveCredentials("http://other:32400", "conf-token", "cid")
    assert "stored-token" not in repr(store.load())


def test_a_damaged_login_file_is_a_clear_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = PlexLoginStore(tmp_path / "plex.json")
    store.path.write_text("{not json")
    assert store.load() is None
    assert "plex login" in caplog.text
    first = store.client_identifier()
    assert first == store.client_identifier()  # stable without a file


def test_auth_url_is_plex_apps_own() -> None:
    url = auth_url("abc", "XYZ")
    assert url.startswith("https://app.plex.tv/auth#?clientID=abc&code=XYZ&")
    assert "context%5Bdevice%5D%5Bproduct%5D=trakt-scrobbled" in url
