"""The bundled application identity: a packager's app, used only when the user set none."""

from __future__ import annotations

from pathlib import Path

import pytest

from trakt_scrobbled import identity
from trakt_scrobbled.config import load_config
from trakt_scrobbled.identity import AppIdentity, bundled_identity, read_identity

BUNDLE = '[trakt]\nclient_id = "packager-id"\nclient_secret = "packager-secret"\n'


def test_the_shipped_file_names_no_app() -> None:
    """The repository ships it empty: a packager fills it, never a commit by mistake."""
    assert bundled_identity() is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BUNDLE, AppIdentity("packager-id", "packager-secret")),
        ('[trakt]\nclient_id = " id "\nclient_secret = "s"\n', AppIdentity("id", "s")),
        ('[trakt]\nclient_id = "id"\nclient_secret = ""\n', None),
        ('[trakt]\nclient_id = "id"\n', None),
        ('[trakt]\nclient_id = 5\nclient_secret = "s"\n', None),
        ("trakt = 3\n", None),
        ("[trakt\n", None),
        ("", None),
    ],
)
def test_read_identity(text: str, expected: AppIdentity | None) -> None:
    assert read_identity(text) == expected


def test_the_secret_is_not_in_its_repr() -> None:
    assert "packager-secret" not in repr(read_identity(BUNDLE))


@pytest.fixture
def bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "app.toml"
    path.write_text(BUNDLE)
    monkeypatch.setattr(identity, "bundled_identity", lambda: read_identity(path.read_text()))
    return path


def test_the_bundle_applies_when_nothing_else_names_an_app(bundle: Path, tmp_path: Path) -> None:
    config = load_config(tmp_path / "none.toml", {})
    assert (config.trakt.client_id, config.trakt.client_secret) == (
        "packager-id",
        "packager-secret",
    )


@pytest.mark.parametrize(
    ("file", "env", "expected"),
    [
        ('[trakt]\nclient_id = "mine"\nclient_secret = "my-secret"\n', {}, ("mine", "my-secret")),
        ('[trakt]\nclient_id = "mine"\n', {}, ("mine", "")),  # never mixed with the bundle
        ("", {"TRAKT_CLIENT_ID": "env-id"}, ("env-id", "")),
        ("", {"TRAKT_CLIENT_ID": "e", "TRAKT_CLIENT_SECRET": "es"}, ("e", "es")),
    ],
)
def test_the_users_own_app_wins(
    bundle: Path, tmp_path: Path, file: str, env: dict[str, str], expected: tuple[str, str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(file)
    config = load_config(path, env)
    assert (config.trakt.client_id, config.trakt.client_secret) == expected
