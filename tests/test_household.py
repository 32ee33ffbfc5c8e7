"""The household: `[accounts.NAME]` in the config, and the router that picks a play's account."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trakt_scrobbled.config import (
    IMPLICIT_ACCOUNT,
    AccountConfig,
    Config,
    ConfigError,
    Problem,
    load_config,
    parse_config,
)
from trakt_scrobbled.router import Route, route

ENV = {"HOME": "/home/u", "XDG_RUNTIME_DIR": "/run/user/1000"}

HOUSEHOLD = """
[accounts.alice]
plex = ["Alice", "12345"]
jellyfin = ["alice"]
kodi = ["192.168.1.20"]
mpv = ["$XDG_RUNTIME_DIR/mpv-alice*.sock", "~/alice.sock"]
mpris = ["org.mpris.MediaPlayer2.vlc"]

[accounts.bob]
default = true
plex = ["bob"]
kodi = ["192.168.1.30:9090"]
"""


def problems(text: str) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, ENV)
    return list(info.value.problems)


# ---------------------------------------------------------------------------- config


def test_no_accounts_is_one_implicit_account() -> None:
    config = parse_config("[mpv]\nenabled = true\n", ENV)
    assert config.accounts == ()
    assert route(config.accounts, "mpv:/tmp/x.sock") == Route(IMPLICIT_ACCOUNT)
    assert route(config.accounts, "plex:uuid", "anyone") == Route(IMPLICIT_ACCOUNT)


def test_accounts_are_read_in_file_order_with_paths_expanded() -> None:
    config = parse_config(HOUSEHOLD, ENV)
    alice, bob = config.accounts
    assert alice == AccountConfig(
        name="alice",
        plex=("Alice", "12345"),
        jellyfin=("alice",),
        kodi=("192.168.1.20",),
        mpv=("/run/user/1000/mpv-alice*.sock", "/home/u/alice.sock"),
        mpris=("vlc",),
    )
    assert bob.default and bob.plex == ("bob",) and bob.kodi == ("192.168.1.30:9090",)


@pytest.mark.parametrize(
    ("text", "key", "line", "message"),
    [
        ('[accounts."Alice Smith"]\n', 'accounts."Alice Smith"', 1, "lower-case"),
        ('[accounts."../../etc"]\n', 'accounts."../../etc"', 1, "lower-case"),
        ('[accounts.a]\nplex = "alice"\n', "accounts.a.plex", 2, "expected array"),
        ("[accounts.a]\nplax = []\n", "accounts.a.plax", 2, 'did you mean "plex"'),
        ('[accounts.a]\n\nkodi = ["host:99999"]\n', "accounts.a.kodi[0]", 3, "host:port"),
        ('[accounts.a]\nkodi = ["a b"]\n', "accounts.a.kodi[0]", 2, "host:port"),
        ('[accounts.a]\nkodi = ["h", "h/"]\n', "accounts.a.kodi[1]", 2, '"/PROFILE"'),
        ('[accounts.a]\nkodi = ["h/ "]\n', "accounts.a.kodi[0]", 2, '"/PROFILE"'),
        ('[accounts.a]\nkodi = ["/Kids"]\n', "accounts.a.kodi[0]", 2, "host:port"),
        ('[accounts.a]\n\nkodi = ["h:0/Kids"]\n', "accounts.a.kodi[0]", 3, "host:port"),
        ('[accounts.a]\nkodi = ["a b/Kids"]\n', "accounts.a.kodi[0]", 2, "host:port"),
        ('[accounts.a]\nkodi = ["h/K\\tids"]\n', "accounts.a.kodi[0]", 2, "profile's name"),
        ('[accounts.a]\nkodi = ["h:９０/Kids"]\n', "accounts.a.kodi[0]", 2, "host:port"),
        ('[accounts.a]\nmpv = ["rel/sock"]\n', "accounts.a.mpv[0]", 2, "absolute"),
        ('[accounts.a]\nmpv = ["$NOPE/s"]\n', "accounts.a.mpv[0]", 2, "$NOPE not set"),
        ('[accounts.a]\nmpris = ["vlc;rm"]\n', "accounts.a.mpris[0]", 2, "D-Bus"),
        ('[accounts.a]\njellyfin = [""]\n', "accounts.a.jellyfin[0]", 2, "must not be empty"),
        ('[accounts.a]\ndefault = "yes"\n', "accounts.a.default", 2, "expected boolean"),
        ("accounts = 3\n", "accounts", 1, "expected a table"),
        ("[accounts]\na = 1\n", "accounts.a", 2, "expected a table"),
        (
            "[accounts.a]\ndefault = true\n[accounts.b]\ndefault = true\n",
            "accounts.b.default",
            4,
            'only one account can be the default, and "a" already is',
        ),
    ],
)
def test_bad_accounts_are_named_with_key_and_line(
    text: str, key: str, line: int, message: str
) -> None:
    found = problems(text)
    assert [(p.key, p.line) for p in found] == [(key, line)], found
    assert message in found[0].message


def test_bad_accounts_are_all_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[accounts.a]\nplex = 1\n[accounts.B]\n[accounts.c]\nkodi = ["x:0"]\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV)
    assert [p.key for p in info.value.problems] == [
        "accounts.a.plex",
        "accounts.B",
        "accounts.c.kodi[0]",
    ]
    assert str(path) + ":2" in str(info.value)


def test_config_with_accounts_differs_from_one_without() -> None:
    assert parse_config(HOUSEHOLD, ENV) != Config()


# ---------------------------------------------------------------------------- router


@pytest.fixture
def household() -> tuple[AccountConfig, ...]:
    return parse_config(HOUSEHOLD, ENV).accounts


@pytest.mark.parametrize(
    ("source", "user", "user_id", "account"),
    [
        ("plex:uuid-1", "Alice", None, "alice"),
        ("plex:uuid-1", "ALICE", None, "alice"),  # names without case
        ("plex:uuid-1", "someone", "12345", "alice"),  # a Plex account id
        ("plex:uuid-1", "bob", None, "bob"),
        ("jellyfin:device", "Alice", None, "alice"),
        ("emby:device", "alice", None, "alice"),
        ("kodi:192.168.1.20:9090", None, None, "alice"),  # a bare host: any port
        ("kodi:192.168.1.20:8080", None, None, "alice"),
        ("kodi:192.168.1.30:9090", None, None, "bob"),
        ("mpv:/run/user/1000/mpv-alice-1.sock", None, None, "alice"),
        ("mpv:/home/u/alice.sock", None, None, "alice"),
        ("mpris:vlc", None, None, "alice"),
    ],
)
def test_a_rule_routes_a_play(
    household: tuple[AccountConfig, ...],
    source: str,
    user: str | None,
    user_id: str | None,
    account: str,
) -> None:
    assert route(household, source, user, user_id).account == account


@pytest.mark.parametrize(
    ("source", "user"),
    [
        ("plex:uuid-1", "carol"),
        ("plex:uuid-1", None),
        ("jellyfin:device", "bob"),  # bob's rule is for Plex, not Jellyfin
        ("kodi:192.168.1.30:8080", None),  # host:port is that port only
        ("kodi:192.168.1.200:9090", None),  # not a prefix match
        ("mpv:/run/user/1000/mpv.sock", None),
        ("mpris:vlc2", None),
        ("mystery:thing", "Alice"),
    ],
)
def test_an_unrouted_play_goes_to_the_default_or_nowhere_with_a_reason(
    household: tuple[AccountConfig, ...], source: str, user: str | None
) -> None:
    to_default = route(household, source, user)
    assert to_default.account == "bob"
    assert "default" in to_default.reason
    nobody = tuple(a for a in household if not a.default)
    dropped = route(nobody, source, user)
    assert dropped.account is None
    assert "no [accounts] rule routes" in dropped.reason
    assert source.partition(":")[2] in dropped.reason or (user or "unknown user") in dropped.reason


KODI_PROFILES = """
[accounts.kids]
kodi = ["192.168.1.20/Kids", " Kodi.LAN:9090 / Kids ", "192.168.1.22/Straße", "[FD00::7]/Kids"]
[accounts.alice]
kodi = ["192.168.1.20:9090/alice", "192.168.1.22/a/b", "[::1]:9090"]
[accounts.house]
kodi = ["192.168.1.20", "[fd00::7]"]
"""


def test_kodi_rules_keep_the_profile_as_written_and_lower_the_host() -> None:
    kids, alice, house = parse_config(KODI_PROFILES, ENV).accounts
    assert kids.kodi == (
        "192.168.1.20/Kids", "kodi.lan:9090/Kids", "192.168.1.22/Straße", "[fd00::7]/Kids"
    )  # fmt: skip
    assert alice.kodi == ("192.168.1.20:9090/alice", "192.168.1.22/a/b", "[::1]:9090")
    assert house.kodi == ("192.168.1.20", "[fd00::7]")


@pytest.mark.parametrize(
    ("source", "profile", "account"),
    [
        ("kodi:192.168.1.20:9090", "Kids", "kids"),
        ("kodi:192.168.1.20:9090", "KIDS", "kids"),  # profiles without case
        ("kodi:192.168.1.20:8080", "kids", "kids"),  # "host/PROFILE": any port
        ("kodi:192.168.1.20:9090", "Alice", "alice"),
        ("kodi:192.168.1.20:8080", "Alice", "house"),  # "host:port/PROFILE": that port only
        ("kodi:192.168.1.20:9090", "Master user", "house"),  # a bare host: any profile
        ("kodi:192.168.1.20:9090", None, "house"),  # unknown: never a profile's rule
        ("kodi:KODI.LAN:9090", "Kids", "kids"),  # hosts without case
        ("kodi:kodi.lan:9091", "Kids", None),
        ("kodi:kodi.lan:9090", None, None),
        ("kodi:192.168.1.22:9090", "STRASSE", "kids"),  # case-folded, not just lowered
        ("kodi:192.168.1.22:9090", "A/B", "alice"),  # a "/" in the name is the name's
        ("kodi:192.168.1.22:9090", "a", None),
        ("plex:uuid", "Kids", None),  # a Kodi rule routes only Kodi
        # IPv6: the source has the bare address ([kodi] host = "::1"), rules the bracketed one
        ("kodi:::1:9090", None, "alice"),
        ("kodi:::1:8080", None, None),
        ("kodi:FD00::7:9090", "kids", "kids"),
        ("kodi:fd00::7:9090", "Master user", "house"),
    ],
)
def test_a_kodi_rule_with_a_profile_routes_only_that_profile(
    source: str, profile: str | None, account: str | None
) -> None:
    accounts = parse_config(KODI_PROFILES, ENV).accounts
    assert route(accounts, source, profile).account == account


@pytest.mark.parametrize(
    ("profile", "said"),
    [
        ("Master user", 'Kodi kodi.lan:9091 (profile "Master user") and'),
        (None, "Kodi kodi.lan:9091 and"),
    ],
)
def test_an_unrouted_kodi_play_names_its_profile_when_known(profile: str | None, said: str) -> None:
    accounts = parse_config(KODI_PROFILES, ENV).accounts
    dropped = route(accounts, "kodi:kodi.lan:9091", profile)
    assert dropped == Route(None, f"no [accounts] rule routes {said} no account is the default")


def test_first_account_in_file_order_wins() -> None:
    config = parse_config('[accounts.x]\nplex = ["p"]\n[accounts.y]\nplex = ["P"]\n', ENV)
    assert route(config.accounts, "plex:u", "p").account == "x"


@given(
    source=st.text(max_size=60),
    user=st.none() | st.text(max_size=30),
    user_id=st.none() | st.text(max_size=30),
)
def test_any_source_routes_to_a_configured_account_or_none(
    source: str, user: str | None, user_id: str | None
) -> None:
    accounts = parse_config(HOUSEHOLD, ENV).accounts
    names = {a.name for a in accounts}
    assert route(accounts, source, user, user_id).account in names
    without_default = tuple(a for a in accounts if not a.default)
    result = route(without_default, source, user, user_id)
    assert result.account in {"alice", None}
    assert (result.account is None) == bool(result.reason)


# ---------------------------------------------------------------------------- adoption


def test_default_account_adopts_the_implicit_login_and_rows(tmp_path: Path) -> None:
    from trakt_scrobbled.clock import SystemClock
    from trakt_scrobbled.events import Ids, MediaType, Scrobble, ScrobbleVerb, TraktItem
    from trakt_scrobbled.household import Adopted, adopt_implicit
    from trakt_scrobbled.outbox import Outbox
    from trakt_scrobbled.paths import Paths
    from trakt_scrobbled.store import open_db

    paths = Paths(config_file=tmp_path / "config.toml", state_dir=tmp_path / "state")
    paths.state_dir.mkdir(mode=0o700)
    paths.token_file.write_text('{"access_token": "a", "refresh_token": "r", "expires_at": 1}')
    paths.token_file.chmod(0o600)
    login = paths.token_file.read_bytes()
    conn = open_db(paths.db_file)
    item = TraktItem(MediaType.MOVIE, Ids(trakt=1), title="Heat")
    implicit = Outbox(conn, SystemClock())
    implicit.enqueue(Scrobble(ScrobbleVerb.STOP, "p1", item, 95.0, watched=True), watch_keys=("k",))
    implicit.note("stop", "Heat", "watched")

    assert adopt_implicit(conn, paths, "alice") == Adopted(token=True, rows=1)
    mine = paths.account_token_file("alice")
    assert mine == paths.state_dir / "token-alice.json"
    assert mine.read_bytes() == login and oct(mine.stat().st_mode & 0o777) == "0o600"
    assert not paths.token_file.exists()  # moved, never copied (refresh tokens are single-use)
    alice = Outbox(conn, SystemClock(), account="alice")
    assert [r.play_id for r in alice.rows()] == ["p1"] and implicit.rows() == []
    assert alice.watched_since(("k",), 0) is not None
    assert [r.account for r in alice.recent()] == ["alice"]  # `status` says whose it was
    # Again: nothing left to adopt, nothing changed.
    assert adopt_implicit(conn, paths, "alice") == Adopted(token=False, rows=0)
    assert mine.read_bytes() == login
    conn.close()


def test_an_account_with_its_own_login_keeps_it(tmp_path: Path) -> None:
    from trakt_scrobbled.household import adopt_implicit
    from trakt_scrobbled.paths import Paths
    from trakt_scrobbled.store import open_db

    paths = Paths(config_file=tmp_path / "c.toml", state_dir=tmp_path)
    paths.token_file.write_text("implicit")
    paths.account_token_file("bob").write_text("bob's own")
    conn = open_db(paths.db_file)
    assert adopt_implicit(conn, paths, "bob").token is False
    assert paths.token_file.read_text() == "implicit"
    assert paths.account_token_file("bob").read_text() == "bob's own"
    conn.close()
