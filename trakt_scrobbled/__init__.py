"""trakt-scrobbled: scrobbles what local media players play to Trakt.tv, durably."""

# A literal, read by setuptools for the package metadata: asking importlib.metadata at run time
# would load the email and zipfile packages into the daemon (about 4 MB of resident memory).
__version__ = "0.1.0"
