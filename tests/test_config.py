"""The config file: defaults, every kind of problem with its key and line, secrets, paths."""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path

import pytest

from trakt_scrobbled.config import (
    AccountConfig,
    Config,
    ConfigError,
    KodiConfig,
    LoggingConfig,
    LogLevel,
    MediaServerConfig,
    MprisConfig,
    MpvConfig,
    NotifyConfig,
    Override,
    OverrideType,
    PlexConfig,
    PlexMode,
    Problem,
    ScrobbleConfig,
    ServerConfig,
    TraktConfig,
    diff_sections,
    find_override,
    load_config,
)
from trakt_scrobbled.events import Ids
from trakt_scrobbled.paths import Paths, ensure_state_dir, resolve_paths

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"
SECTION_CLASSES: dict[str, type] = {
    "trakt": TraktConfig,
    "scrobble": ScrobbleConfig,
    "mpv": MpvConfig,
    "kodi": KodiConfig,
    "plex": PlexConfig,
    "jellyfin": MediaServerConfig,
    "emby": MediaServerConfig,
    "mpris": MprisConfig,
    "server": ServerConfig,
    "logging": LoggingConfig,
    "notify": NotifyConfig,
}
GOOD_SECRET = "Zq8-vX3_kLm9.Tn2~wR"


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[Problem]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env or {})
    return list(info.value.problems)


# ---------------------------------------------------------------------------- defaults, env


def test_no_path_means_defaults() -> None:
    config = load_config(None, {})
    assert config == Config()
    assert config.source is None
    assert config.scrobble.watched_threshold == 80
    assert config.mpv.enabled is True
    assert config.server.port == 8642


def test_missing_file_means_defaults_unless_explicit(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    assert load_config(missing, {}) == Config()
    with pytest.raises(ConfigError) as info:
        load_config(missing, {}, explicit=True)
    assert info.value.problems == (Problem("", "file not found"),)
    assert str(info.value) == f"{missing}: file not found"


def test_empty_file_means_defaults_and_keeps_source(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    config = load_config(path, {})
    assert config == Config()
    assert config.source == path


def test_env_overrides_file_when_non_empty(tmp_path: Path) -> None:
    path = write(tmp_path, '[trakt]\nclient_id = "file-id"\nclient_secret = "file-secret"\n')
    config = load_config(path, {"TRAKT_CLIENT_ID": "env-id", "TRAKT_CLIENT_SECRET": ""})
    assert config.trakt.client_id == "env-id"
    assert config.trakt.client_secret == "file-secret"
    config = load_config(path, {"TRAKT_CLIENT_SECRET": "env-secret"})
    assert (config.trakt.client_id, config.trakt.client_secret) == ("file-id", "env-secret")
    assert load_config(None, {"TRAKT_CLIENT_ID": "x"}).trakt.client_id == "x"


def test_values_are_normalised(tmp_path: Path) -> None:
    text = (
        """
[trakt]
api_url = "http://127.0.0.1:8000/"
[scrobble]
watched_threshold = 90
seek_debounce = 3
min_duration = 0.5
[mpv]
sockets = ["~/mpv.sock", "$XDG_RUNTIME_DIR/mpv/*.sock", "${XDG_RUNTIME_DIR}/x"]
[plex]
enabled = true
secret = "GOOD_SECRET"
accounts = ["alice", "bob"]
url = "http://plex.lan:32400/"
[logging]
level = "DEBUG"
"""
    ).replace("GOOD_SECRET", GOOD_SECRET)
    config = load_config(write(tmp_path, text), {"HOME": "/home/u", "XDG_RUNTIME_DIR": "/run/u"})
    assert config.trakt.api_url == "http://127.0.0.1:8000"
    assert config.scrobble == ScrobbleConfig(
        watched_threshold=90.0, seek_debounce=3.0, min_duration=0.5
    )
    assert isinstance(config.scrobble.seek_debounce, float)
    assert config.mpv.sockets == ("/home/u/mpv.sock", "/run/u/mpv/*.sock", "/run/u/x")
    assert config.plex.accounts == ("alice", "bob")
    assert config.plex.url == "http://plex.lan:32400"
    assert config.logging.level is LogLevel.DEBUG
    assert config.logging.level.numeric == 10


def test_plex_live_mode_needs_no_secret(tmp_path: Path) -> None:
    text = '[plex]\nenabled = true\nmode = " Live "\nplex_tv_url = "http://127.0.0.1:9/"\n'
    config = load_config(write(tmp_path, text), {"HOME": "/home/u"})
    assert config.plex.enabled and config.plex.mode is PlexMode.LIVE
    assert config.plex.secret == "" and config.plex.plex_tv_url == "http://127.0.0.1:9"
    assert load_config(None, {}).plex.mode is PlexMode.WEBHOOK  # what existing configs mean


# ---------------------------------------------------------------------------- problems


# (file text, key, line, message) — the message is matched exactly.
PROBLEM_CASES = [
    pytest.param(
        "[scrobble]\nwatched_treshold = 90\n",
        "scrobble.watched_treshold",
        2,
        'unknown key (did you mean "watched_threshold"?)',
        id="unknown-key-did-you-mean",
    ),
    pytest.param(
        "[mpv]\nenabled = true\nbogus = 1\n", "mpv.bogus", 3, "unknown key", id="unknown-key"
    ),
    pytest.param(
        "[scroble]\nwatched_threshold = 90\n",
        "scroble",
        1,
        'unknown table (did you mean "scrobble"?)',
        id="unknown-table",
    ),
    pytest.param(
        "\n[mpv.extra]\nx = 1\n", "mpv.extra", 2, "unknown table", id="unknown-nested-table"
    ),
    pytest.param("\nfoo = 1\n", "foo", 2, "unknown key", id="unknown-top-level-key"),
    pytest.param(
        '[kodi]\nport = "9090"\n',
        "kodi.port",
        2,
        'expected integer, got string "9090"',
        id="string-for-int",
    ),
    pytest.param(
        "[server]\nhost = '::1'\nport = true\n",
        "server.port",
        3,
        "expected integer, got boolean true",
        id="bool-is-not-int",
    ),
    pytest.param(
        "[kodi]\nport = 9090.5\n",
        "kodi.port",
        2,
        "expected integer, got float 9090.5",
        id="float-for-int",
    ),
    pytest.param(
        '[scrobble]\nseek_debounce = "2"\n',
        "scrobble.seek_debounce",
        2,
        'expected number, got string "2"',
        id="string-for-float",
    ),
    pytest.param(
        "[mpv]\nenabled = 1\n",
        "mpv.enabled",
        2,
        "expected boolean, got integer 1",
        id="int-for-bool",
    ),
    pytest.param(
        "[scrobble]\n\nwatched_threshold = 70\n",
        "scrobble.watched_threshold",
        3,
        "must be between 80 and 100, got 70",
        id="threshold-low",
    ),
    pytest.param(
        "[scrobble]\nwatched_threshold = 100.5\n",
        "scrobble.watched_threshold",
        2,
        "must be between 80 and 100, got 100.5",
        id="threshold-high",
    ),
    pytest.param(
        "[kodi]\nport = 0\n", "kodi.port", 2, "must be between 1 and 65535, got 0", id="port-zero"
    ),
    pytest.param(
        "[server]\nport = 70000\n",
        "server.port",
        2,
        "must be between 1 and 65535, got 70000",
        id="port-high",
    ),
    pytest.param(
        "[scrobble]\nseek_debounce = 61\n",
        "scrobble.seek_debounce",
        2,
        "must be between 0 and 60, got 61",
        id="debounce-high",
    ),
    pytest.param(
        "[scrobble]\nmin_duration = -1\n",
        "scrobble.min_duration",
        2,
        "must be at least 0, got -1",
        id="min-duration-negative",
    ),
    pytest.param(
        "[scrobble]\nmin_duration = inf\n",
        "scrobble.min_duration",
        2,
        "must be a finite number, got inf",
        id="min-duration-inf",
    ),
    pytest.param("[kodi]\nhost = ' '\n", "kodi.host", 2, "must not be empty", id="empty-host"),
    pytest.param(
        "mpv = 3\n", "mpv", 1, "expected a table ([mpv]), got integer 3", id="section-not-table"
    ),
    pytest.param(
        '[trakt]\napi_url = "ftp://example.com"\n',
        "trakt.api_url",
        2,
        'must be an http:// or https:// URL, got "ftp://example.com"',
        id="api-url-scheme",
    ),
    pytest.param(
        '[trakt]\napi_url = "api.trakt.tv"\n',
        "trakt.api_url",
        2,
        'must be an http:// or https:// URL, got "api.trakt.tv"',
        id="api-url-no-scheme",
    ),
    pytest.param(
        '[trakt]\nclient_id = " abc "\n',
        "trakt.client_id",
        2,
        "has spaces around it (a copy-and-paste slip?)",
        id="client-id-spaces",
    ),
    pytest.param(
        '[plex]\nurl = "plex.lan:32400"\n',
        "plex.url",
        2,
        'must be an http:// or https:// URL, got "plex.lan:32400"',
        id="plex-url",
    ),
    pytest.param(
        '[logging]\nlevel = "verbose"\n',
        "logging.level",
        2,
        'must be one of debug, info, warning, error, got "verbose"',
        id="log-level",
    ),
    pytest.param(
        "[plex]\nenabled = true\n",
        "plex.secret",
        1,
        "required when plex.enabled is true (the webhook URL is "
        "http://HOST:PORT/plex/SECRET); use at least 16 random characters "
        '(or mode = "live": no webhooks, no Plex Pass needed)',
        id="plex-secret-required",
    ),
    pytest.param(
        '[plex]\nmode = "websocket"\n',
        "plex.mode",
        2,
        'must be "webhook" or "live", got "websocket"',
        id="plex-mode-unknown",
    ),
    pytest.param(
        '[plex]\nplex_tv_url = "plex.tv"\n',
        "plex.plex_tv_url",
        2,
        'must be an http:// or https:// URL, got "plex.tv"',
        id="plex-tv-url-not-a-url",
    ),
    pytest.param(
        '[plex]\naccounts = "alice"\n',
        "plex.accounts",
        2,
        'expected array, got string "alice"',
        id="plex-accounts-not-list",
    ),
    pytest.param(
        '[plex]\naccounts = ["alice", 3]\n',
        "plex.accounts[1]",
        2,
        "expected string, got integer 3",
        id="plex-accounts-item",
    ),
    pytest.param(
        '[mpv]\nsockets = [\n  "/run/a.sock",\n  "",\n]\n',
        "mpv.sockets[1]",
        2,
        "must not be empty",
        id="socket-empty",
    ),
    pytest.param(
        '[mpv]\nsockets = ["/a", "/b", "mpv.sock"]\n',
        "mpv.sockets[2]",
        2,
        'must be an absolute path or glob (after ~ and $VARS), got "mpv.sock"',
        id="socket-relative",
    ),
    pytest.param(
        '[mpv]\nsockets = ["$NOPE_UNSET/mpv.sock"]\n',
        "mpv.sockets[0]",
        2,
        "$NOPE_UNSET not set in the environment",
        id="socket-unset-var",
    ),
    pytest.param(
        "[mpv]\nsockets = '/run/mpv.sock'\n",
        "mpv.sockets",
        2,
        'expected array, got string "/run/mpv.sock"',
        id="sockets-not-list",
    ),
    pytest.param(
        "scrobble.watched_threshold = 70\n",
        "scrobble.watched_threshold",
        1,
        "must be between 80 and 100, got 70",
        id="dotted-key",
    ),
    pytest.param(
        "\nkodi = { enabled = true, port = 0 }\n",
        "kodi.port",
        2,
        "must be between 1 and 65535, got 0",
        id="inline-table",
    ),
    pytest.param(
        "[trakt]\nclient_id = '''abc\n[kodi]\nport = 0'''\n[kodi]\nport = 0\n",
        "kodi.port",
        6,
        "must be between 1 and 65535, got 0",
        id="multiline-string-skipped",
    ),
    pytest.param(
        '["kodi"]\n"port" = -5\n',
        "kodi.port",
        2,
        "must be between 1 and 65535, got -5",
        id="quoted-keys",
    ),
    # overrides
    pytest.param(
        '[overrides]\npattern = "*/x/*"\n',
        "overrides",
        1,
        "expected an array of tables ([[overrides]]), got table",
        id="overrides-not-array",
    ),
    pytest.param(
        '[[overrides]]\ntype = "movie"\nimdb = "tt0133093"\n',
        "overrides[0].pattern",
        1,
        'required: a glob matched against the full path, e.g. "*/Show/*"',
        id="override-pattern-required",
    ),
    pytest.param(
        '[[overrides]]\npattern = "Some Show"\ntype = "show"\ntvdb = 1\n',
        "overrides[0].pattern",
        2,
        'is matched against the full path: start it with / or ~ or *, got "Some Show"',
        id="override-pattern-relative",
    ),
    pytest.param(
        '[[overrides]]\npattern = "/a/*"\nimdb = "tt0133093"\n',
        "overrides[0].type",
        1,
        'required: "movie" or "show"',
        id="override-type-required",
    ),
    pytest.param(
        '[[overrides]]\npattern = "/a/*"\ntype = "movie"\nimdb = "tt0133093"\n'
        '[[overrides]]\npattern = "/b/*"\ntype = "episode"\ntvdb = 5\n',
        "overrides[1].type",
        7,
        'must be "movie" or "show", got "episode"',
        id="override-type-second-entry",
    ),
    pytest.param(
        '[[overrides]]\npattern = "/a/*"\ntype = "movie"\n',
        "overrides[0]",
        1,
        "needs at least one id: trakt, imdb, tmdb, tvdb, slug",
        id="override-no-ids",
    ),
    pytest.param(
        '[[overrides]]\npattern = "/a/*"\ntype = "movie"\nimdb = "0133093"\n',
        "overrides[0].imdb",
        4,
        'must look like "tt0944947", got "0133093"',
        id="override-imdb",
    ),
    pytest.param(
        '[[overrides]]\npattern = "/a/*"\ntype = "movie"\ntmdb = 0\n',
        "overrides[0].tmdb",
        4,
        "must be a positive integer, got 0",
        id="override-tmdb",
    ),
    pytest.param(
        '[[overrides]]\npattern = "/a/*"\ntype = "movie"\ntrakt = "12"\n',
        "overrides[0].trakt",
        4,
        'expected integer, got string "12"',
        id="override-trakt-type",
    ),
    pytest.param(
        '[[overrides]]\npattern = "/a/*"\ntype = "show"\nslug = "a show"\n',
        "overrides[0].slug",
        4,
        'must be a Trakt slug like "game-of-thrones", got "a show"',
        id="override-slug",
    ),
    pytest.param(
        '[[overrides]]\npattern = "/a/*"\ntype = "show"\ntvdb = 1\ntmbd = 2\n',
        "overrides[0].tmbd",
        5,
        'unknown key (did you mean "tmdb"?)',
        id="override-unknown-key",
    ),
    pytest.param(
        '[mpris]\nplayers = ["vlc", "my player"]\n',
        "mpris.players[1]",
        2,
        "a D-Bus name pattern may only hold letters, digits, _ - . and the glob characters "
        '* ? [ ] !, got "my player"',
        id="mpris-pattern",
    ),
    pytest.param(
        '[mpris]\nignore = "spotify"\n',
        "mpris.ignore",
        2,
        'expected array, got string "spotify"',
        id="mpris-ignore-type",
    ),
    pytest.param(
        "overrides = [3]\n",
        "overrides[0]",
        1,
        "expected a table, got integer 3",
        id="override-item",
    ),
]


@pytest.mark.parametrize(("text", "key", "line", "message"), PROBLEM_CASES)
def test_problem(tmp_path: Path, text: str, key: str, line: int, message: str) -> None:
    problems = problems_of(tmp_path, text)
    assert problems == [Problem(key, message, line)]


def test_every_problem_at_once(tmp_path: Path) -> None:
    text = """\
[trakt]
api_url = "nope"

[scrobble]
watched_threshold = 50
seek_debounse = 1

[server]
port = "8642"
"""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert [(p.key, p.line) for p in info.value.problems] == [
        ("trakt.api_url", 2),
        ("scrobble.watched_threshold", 5),
        ("scrobble.seek_debounse", 6),
        ("server.port", 9),
    ]
    assert str(info.value).splitlines() == [
        f'{path}:2: trakt.api_url: must be an http:// or https:// URL, got "nope"',
        f"{path}:5: scrobble.watched_threshold: must be between 80 and 100, got 50",
        f'{path}:6: scrobble.seek_debounse: unknown key (did you mean "seek_debounce"?)',
        f'{path}:9: server.port: expected integer, got string "8642"',
    ]


def test_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '[trakt]\nclient_id = "abc\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    (problem,) = info.value.problems
    assert (problem.key, problem.line) == ("", 2)
    assert problem.column is not None
    assert problem.column > 1
    assert problem.message.startswith("invalid TOML: ")
    assert "(at line" not in problem.message
    assert str(info.value).startswith(f"{path}:2:{problem.column}: invalid TOML: ")


def test_syntax_error_duplicate_key(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, "[kodi]\nport = 1\nport = 2\n")
    assert problem.line == 3
    assert problem.message.startswith("invalid TOML: ")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'[trakt]\nclient_id = "\xff\xfe"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    (problem,) = info.value.problems
    assert problem.line == 2
    assert problem.message.startswith("is not UTF-8 text")


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xef\xbb\xbf[kodi]\nport = 9091\n")
    assert load_config(path, {}).kodi.port == 9091


def test_directory_is_a_clear_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, {})
    assert info.value.problems == (Problem("", "is a directory, not a config file"),)


def test_other_os_errors_are_a_clear_problem(tmp_path: Path) -> None:
    not_a_dir = write(tmp_path, "")
    with pytest.raises(ConfigError) as info:
        load_config(not_a_dir / "config.toml", {}, explicit=True)
    assert info.value.problems == (Problem("", "cannot read it: Not a directory"),)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_a_clear_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    path.chmod(0)
    try:
        with pytest.raises(ConfigError) as info:
            load_config(path, {})
    finally:
        path.chmod(0o600)
    assert info.value.problems == (Problem("", "cannot read it: permission denied"),)


def test_problem_rendering() -> None:
    assert Problem("a.b", "bad").render() == "a.b: bad"
    assert Problem("a.b", "bad", 3).render(Path("c.toml")) == "c.toml:3: a.b: bad"
    assert Problem("", "bad", 3, 7).render(Path("c.toml")) == "c.toml:3:7: bad"
    assert Problem("a.b", "bad").render(Path("c.toml")) == "c.toml: a.b: bad"


# ---------------------------------------------------------------------------- secrets


SECRET_VALUES = ("tr4kt-cl13nt-s3cr3t", "pl3x-t0k3n-v4lu3", "sh0rt")


def test_secrets_absent_from_repr(tmp_path: Path) -> None:
    text = f"""
[trakt]
client_secret = "{SECRET_VALUES[0]}"
[plex]
enabled = true
secret = "{GOOD_SECRET}"
token = "{SECRET_VALUES[1]}"
"""
    config = load_config(write(tmp_path, text), {})
    assert config.plex.secret == GOOD_SECRET
    shown = repr(config) + str(config) + repr(config.plex) + repr(config.trakt)
    for secret in (*SECRET_VALUES[:2], GOOD_SECRET):
        assert secret not in shown
    env_config = load_config(None, {"TRAKT_CLIENT_SECRET": "env-s3cr3t-xyz"})
    assert env_config.trakt.client_secret == "env-s3cr3t-xyz"
    assert "env-s3cr3t-xyz" not in repr(env_config)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (f'[plex]\nenabled = true\nsecret = "{SECRET_VALUES[2]}"\n', "plex.secret"),
        ('[plex]\nsecret = "a/b?c=d&e-1234567890"\n', "plex.secret"),
        ("[plex]\nsecret = 123456789012345678\n", "plex.secret"),
        (f'[plex]\ntoken = " {SECRET_VALUES[1]} "\n', "plex.token"),
        ("[plex]\ntoken = 987654321\n", "plex.token"),
        (f'[trakt]\nclient_secret = "{SECRET_VALUES[0]} "\n', "trakt.client_secret"),
        ("[trakt]\nclient_secret = 31415926535\n", "trakt.client_secret"),
        (f'[trakt]\nclient_secret = "{SECRET_VALUES[0]}" junk\n', ""),
    ],
)
def test_secrets_absent_from_errors(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert [p.key for p in info.value.problems] == [key]
    rendered = str(info.value)
    secret_values = re.findall(r'= "?\s*([^"\n]+?)\s*"?(?: junk)?$', text, re.MULTILINE)
    for value in secret_values:
        if value not in ("true", "false"):
            assert value.strip() not in rendered


def test_short_plex_secret_says_how_long(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, '[plex]\nenabled = true\nsecret = "abc123"\n')
    assert problem == Problem(
        "plex.secret",
        "too short: use at least 16 random characters, e.g. from "
        "`python3 -c 'import secrets; print(secrets.token_urlsafe(24))'`",
        3,
    )


# ---------------------------------------------------------------------------- the example


def uncommented_example() -> str:
    """The example with its commented-out `key = value` lines and headers switched on."""
    out = []
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        if re.match(r"#\s?(\[\[?[\w.]+\]\]?\s*$|[\w-]+\s*=)", line):
            line = re.sub(r"^#\s?", "", line)
        out.append(line)
    return "\n".join(out) + "\n"


def test_example_loads_clean_and_equals_defaults() -> None:
    config = load_config(EXAMPLE, {}, explicit=True)
    assert config == Config()
    assert config.source == EXAMPLE


def test_example_documents_every_key() -> None:
    data = tomllib.loads(uncommented_example())
    for section, cls in SECTION_CLASSES.items():
        assert section in data, f"[{section}] missing from config.example.toml"
        documented = set(data[section])
        for f in fields(cls):
            assert f.name in documented, f"{section}.{f.name} missing from config.example.toml"
    override_keys = {f.name for f in fields(Override)} - {"ids"} | {f.name for f in fields(Ids)}
    assert override_keys <= set(data["overrides"][0])
    account_keys = {f.name for f in fields(AccountConfig)} - {"name"}
    assert set(data["accounts"]["alice"]) == account_keys
    assert set(data) == {*SECTION_CLASSES, "overrides", "accounts"}


def test_example_comments_every_key() -> None:
    lines = uncommented_example().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"[\w-]+\s*=", line):
            previous = EXAMPLE.read_text(encoding="utf-8").splitlines()[index - 1]
            assert "#" in line or previous.startswith("#"), f"no comment for: {line}"


def test_example_override_block_is_valid(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, uncommented_example()), {})
    assert config.overrides == (
        Override(
            pattern="*/Game of Thrones/*",
            type=OverrideType.SHOW,
            ids=Ids(trakt=1390, slug="game-of-thrones", imdb="tt0944947", tmdb=1399, tvdb=121361),
        ),
    )


def test_example_values_are_the_dataclass_defaults() -> None:
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    defaults = Config()
    for section in SECTION_CLASSES:
        for key, value in data[section].items():
            expected = getattr(getattr(defaults, section), key)
            actual = tuple(value) if isinstance(value, list) else value
            assert actual == expected, f"{section}.{key}"


# ---------------------------------------------------------------------------- overrides, diff


def test_overrides_match_full_paths_first_wins(tmp_path: Path) -> None:
    text = """
[[overrides]]
pattern = "*/Some Show/*"
type = "show"
trakt = 1
[[overrides]]
pattern = "~/Movies/Matrix*"
type = "movie"
imdb = "tt0133093"
[[overrides]]
pattern = "*"
type = "movie"
slug = "catch-all"
"""
    config = load_config(write(tmp_path, text), {"HOME": "/home/u"})
    first, second, third = config.overrides
    assert second.pattern == "/home/u/Movies/Matrix*"
    assert find_override(config.overrides, "/srv/tv/Some Show/S01E01.mkv") is first
    assert find_override(config.overrides, "/home/u/Movies/Matrix (1999).mkv") is second
    assert find_override(config.overrides, "/srv/tv/Other/x.mkv") is third
    assert not first.matches("/srv/tv/some show/S01E01.mkv")
    assert find_override(config.overrides[:1], "/x.mkv") is None


def test_mpris_patterns_lose_the_bus_prefix_and_an_empty_ignore_is_kept(tmp_path: Path) -> None:
    text = (
        '[mpris]\nenabled = true\nplayers = ["org.mpris.MediaPlayer2.vlc", " haruna "]\n'
        "ignore = []\n"
    )
    config = load_config(write(tmp_path, text), {})
    assert config.mpris == MprisConfig(enabled=True, players=("vlc", "haruna"), ignore=())
    assert load_config(write(tmp_path, "[mpris]\nenabled = true\n"), {}).mpris.ignore == (
        MprisConfig().ignore
    )


def test_diff_sections() -> None:
    old = Config()
    assert diff_sections(old, Config()) == frozenset()
    new = replace(
        old,
        kodi=replace(old.kodi, port=9091),
        plex=replace(old.plex, secret="another-secret-x"),
        source=Path("/elsewhere.toml"),
    )
    assert diff_sections(old, new) == frozenset({"kodi", "plex"})
    with_override = replace(
        old, overrides=(Override(pattern="*", type=OverrideType.MOVIE, ids=Ids(trakt=1)),)
    )
    assert diff_sections(old, with_override) == frozenset({"overrides"})


# ---------------------------------------------------------------------------- paths


def test_paths_default_to_home() -> None:
    paths = resolve_paths({"HOME": "/home/u"}, None)
    assert paths == Paths(
        config_file=Path("/home/u/.config/trakt-scrobbled/config.toml"),
        state_dir=Path("/home/u/.local/state/trakt-scrobbled"),
    )
    assert paths.db_file == Path("/home/u/.local/state/trakt-scrobbled/state.db")
    assert paths.token_file == Path("/home/u/.local/state/trakt-scrobbled/token.json")


def test_paths_honour_xdg() -> None:
    env = {"HOME": "/home/u", "XDG_CONFIG_HOME": "/cfg", "XDG_STATE_HOME": "/st"}
    paths = resolve_paths(env, None)
    assert paths.config_file == Path("/cfg/trakt-scrobbled/config.toml")
    assert paths.state_dir == Path("/st/trakt-scrobbled")


@pytest.mark.parametrize("value", ["", "relative/dir"])
def test_paths_ignore_empty_or_relative_xdg(value: str) -> None:
    paths = resolve_paths({"HOME": "/h", "XDG_CONFIG_HOME": value, "XDG_STATE_HOME": value}, None)
    assert paths.config_file == Path("/h/.config/trakt-scrobbled/config.toml")
    assert paths.state_dir == Path("/h/.local/state/trakt-scrobbled")


def test_paths_systemd_directories_win() -> None:
    env = {
        "HOME": "/home/u",
        "XDG_CONFIG_HOME": "/cfg",
        "XDG_STATE_HOME": "/st",
        "CONFIGURATION_DIRECTORY": "/etc/sd-conf:/etc/other",
        "STATE_DIRECTORY": "/var/lib/sd-state:/var/lib/other",
    }
    paths = resolve_paths(env, None)
    assert paths.config_file == Path("/etc/sd-conf/config.toml")
    assert paths.state_dir == Path("/var/lib/sd-state")


def test_paths_explicit_config_wins() -> None:
    env = {"HOME": "/h", "CONFIGURATION_DIRECTORY": "/etc/sd"}
    paths = resolve_paths(env, Path("/tmp/mine.toml"))
    assert paths.config_file == Path("/tmp/mine.toml")
    assert paths.state_dir == Path("/h/.local/state/trakt-scrobbled")


def test_paths_without_home_use_passwd() -> None:
    paths = resolve_paths({}, None)
    assert paths.config_file.is_absolute()
    assert paths.config_file.parts[-2:] == ("trakt-scrobbled", "config.toml")


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("loose_umask")
def test_state_dir_is_created_private(tmp_path: Path) -> None:
    paths = resolve_paths({"HOME": str(tmp_path)}, None)
    created = ensure_state_dir(paths)
    assert created == paths.state_dir
    assert stat.S_IMODE(created.stat().st_mode) == 0o700
    assert ensure_state_dir(paths) == created  # idempotent


@pytest.mark.usefixtures("loose_umask")
def test_existing_state_dir_is_tightened(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    ensure_state_dir(Paths(config_file=tmp_path / "c.toml", state_dir=state))
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
