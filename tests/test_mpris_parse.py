"""What the MPRIS adapter makes of what a player says: URLs, metadata, names (no bus needed)."""

from __future__ import annotations

import os
from pathlib import PurePosixPath

import pytest
from dbus_fast import Variant
from hypothesis import given
from hypothesis import strategies as st

from trakt_scrobbled.players.mpris import (
    MAX_TEXT,
    Snapshot,
    Status,
    file_path,
    item_of,
    name_matches,
    session_bus_address,
    socket_followed,
    source_name,
)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("file:///films/The%20Matrix%20(1999).mkv", "/films/The Matrix (1999).mkv"),
        ("file:///films/%C3%BC.mkv", "/films/ü.mkv"),
        ("FILE:///a/b.mkv", "/a/b.mkv"),
        ("file://localhost/a/b.mkv", "/a/b.mkv"),
        ("file:///a/./c/../b.mkv", "/a/b.mkv"),
        ("file:///a/b%2523.mkv", "/a/b%23.mkv"),  # decoded once, not twice
        ("file://evil.example/etc/passwd", None),  # another machine's file is no local path
        ("file:///a/%00b.mkv", None),  # a NUL cannot be in a path
        ("file:///a/%ff.mkv", None),  # not UTF-8
        ("file:relative.mkv", None),
        ("file://", None),
        ("http://host/a.mkv", None),
    ],
)
def test_file_urls(url: str, path: str | None) -> None:
    assert file_path(url) == path


@given(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), min_size=1))
def test_any_local_path_comes_back_from_its_file_url(name: str) -> None:
    path = os.path.normpath("/" + name)
    assert file_path(PurePosixPath(path).as_uri()) == path


def v(value: object, signature: str = "s") -> Variant:
    return Variant(signature, value)


def test_metadata_with_a_file_url_title_and_length() -> None:
    item = item_of(
        {
            "mpris:trackid": v("/org/videolan/vlc/playlist/3", "o"),
            "xesam:url": v("file:///tv/Show.S01E02.mkv"),
            "xesam:title": v("Show.S01E02.mkv"),
            "mpris:length": v(1_500_000_000, "x"),
        }
    )
    assert item is not None
    assert item.media.path == "/tv/Show.S01E02.mkv"
    assert item.media.title == "Show.S01E02.mkv"
    assert item.duration == 1500.0
    # The length does not tell one item from the next (it often comes a moment later).
    later = item_of({"mpris:trackid": v("/org/videolan/vlc/playlist/3", "o"),
                     "xesam:url": v("file:///tv/Show.S01E02.mkv"),
                     "xesam:title": v("Show.S01E02.mkv")})  # fmt: skip
    assert later is not None and later.key == item.key


@pytest.mark.parametrize(
    ("metadata", "path", "title"),
    [
        ({"xesam:url": v("https://tv.example/live.m3u8")}, "https://tv.example/live.m3u8", None),
        ({"xesam:title": v("Some Film (2001)")}, None, "Some Film (2001)"),
        ({"xesam:url": v("file://evil/x.mkv"), "xesam:title": v("x")}, None, "x"),
        ({"xesam:url": v("not a url"), "xesam:title": v("y")}, None, "y"),
    ],
)
def test_streams_and_titles(metadata: dict[str, Variant], path: str | None, title: str) -> None:
    item = item_of(metadata)
    assert item is not None
    assert (item.media.path, item.media.title) == (path, title)


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {"mpris:trackid": v("/noplaylist", "o")},
        {"xesam:url": v(42, "i"), "xesam:title": v(["a"], "as")},
        {"xesam:url": v(""), "xesam:title": v("   ")},
        {"xesam:url": v("file:///a/%00.mkv")},
        {"xesam:title": v("x" * (MAX_TEXT + 1))},
        {"xesam:title": v("a\x00b")},
        "not a dict",
        None,
    ],
)
def test_metadata_naming_nothing_usable(metadata: object) -> None:
    assert item_of(metadata) is None


@pytest.mark.parametrize(
    ("length", "seconds"),
    [
        (v(90_000_000, "x"), 90.0),
        (v(90_000_000, "t"), 90.0),
        (v(90e6, "d"), 90.0),  # some players send a double
        (v(-1, "x"), None),
        (v(float("nan"), "d"), None),
        (v(float("inf"), "d"), None),
        (v(2**62, "x"), None),  # 146 000 years
        (v("90", "s"), None),
        (v(True, "b"), None),
    ],
)
def test_lengths(length: Variant, seconds: float | None) -> None:
    item = item_of({"xesam:title": v("t"), "mpris:length": length})
    assert item is not None and item.duration == seconds


def test_snapshot_checks_every_value() -> None:
    snap = Snapshot.parse(
        {
            "PlaybackStatus": v("Playing"),
            "Metadata": v({"xesam:title": v("t")}, "a{sv}"),
            "Position": v(5_000_000, "x"),
            "Rate": v(1.5, "d"),
        }
    )
    assert (snap.status, snap.position, snap.rate) == (Status.PLAYING, 5.0, 1.5)
    bad = Snapshot.parse(
        {
            "PlaybackStatus": v("Dancing"),
            "Metadata": v(7, "i"),
            "Position": v("now"),
            "Rate": v(0.0, "d"),  # 0 is not a rate (MPRIS: pause with PlaybackStatus)
        }
    )
    assert bad == Snapshot(None, None, None, None)
    assert Snapshot.parse([1, 2]) == Snapshot(None, None, None, None)
    assert Snapshot.parse({"Rate": v(-2.0, "d")}).rate is None


@pytest.mark.parametrize(
    ("name", "patterns", "matches"),
    [
        ("org.mpris.MediaPlayer2.vlc", ["vlc"], True),
        ("org.mpris.MediaPlayer2.vlc.instance1234", ["vlc"], True),
        ("org.mpris.MediaPlayer2.firefox.instance_1_23", ["firefox*"], True),
        ("org.mpris.MediaPlayer2.io.github.celluloid_player.Celluloid", ["io.github.*"], True),
        ("org.mpris.MediaPlayer2.spotify", ["vlc", "mpv"], False),
        ("org.mpris.MediaPlayer2.mpvx", ["mpv"], False),
        ("org.mpris.MediaPlayer2.VLC", ["vlc"], False),  # bus names are case-sensitive
    ],
)
def test_name_patterns(name: str, patterns: list[str], matches: bool) -> None:
    assert name_matches(name, patterns) is matches


def test_source_is_the_most_specific_name() -> None:
    names = ["org.mpris.MediaPlayer2.vlc.instance9", "org.mpris.MediaPlayer2.vlc"]
    assert source_name(names) == "org.mpris.MediaPlayer2.vlc.instance9"


def test_session_bus_address() -> None:
    assert session_bus_address({"DBUS_SESSION_BUS_ADDRESS": "unix:path=/x"}) == "unix:path=/x"
    assert session_bus_address({"XDG_RUNTIME_DIR": "/run/user/7"}) == "unix:path=/run/user/7/bus"
    assert session_bus_address({"XDG_RUNTIME_DIR": "relative"}) is None
    assert session_bus_address({}) is None


def test_a_process_is_followed_by_mpv_when_it_listens_on_a_configured_socket() -> None:
    import socket

    path = f"/tmp/tsm-{os.getpid()}.sock"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(path)
        server.listen()
        assert socket_followed(os.getpid(), ["/tmp/tsm-*.sock"])
        assert not socket_followed(os.getpid(), ["/elsewhere/*.sock"])
        assert not socket_followed(None, ["/tmp/tsm-*.sock"])
        assert not socket_followed(os.getpid(), [])
    finally:
        server.close()
        os.unlink(path)
