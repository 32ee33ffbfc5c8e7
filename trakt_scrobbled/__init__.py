"""trakt-scrobbled: scrobbles what local media players play to Trakt.tv, durably."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trakt-scrobbled")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
