"""Secrets out of URLs before they are printed or logged.

A URL in the config may carry a credential (`?X-Plex-Token=…`, `user:password@host`); every
place that shows a URL (config problems, `doctor`, `status`, the sd_notify line, logs) passes
it, or the text around it, through here.
"""

from __future__ import annotations

import re
import urllib.parse

MASK = "***"

_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")


def mask_url(url: str) -> str:
    """`url` with its userinfo, query values and fragment replaced by `***`.

    The scheme, host, port, path and query keys stay, so that the user still sees which URL
    is meant. Something that is not a URL comes back unchanged.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return _mask_loosely(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rpartition("@")[2]
    query = parts.query
    if query:
        query = "&".join(
            f"{key}={MASK}" if sep else key
            for key, sep, _ in (pair.partition("=") for pair in query.split("&"))
        )
    fragment = MASK if parts.fragment else ""
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def mask_urls(text: str) -> str:
    """Every URL found in free text masked by `mask_url`."""
    return _URL_IN_TEXT.sub(_mask_match, text)


def _mask_match(match: re.Match[str]) -> str:
    url = match.group()
    kept = url.rstrip(".,;:)]")  # the sentence's punctuation, not the URL's
    return mask_url(kept) + url[len(kept) :]


def _mask_loosely(url: str) -> str:
    """For a string urlsplit refuses (a bad IPv6 literal): drop everything after the host."""
    scheme, sep, rest = url.partition("://")
    host = rest.split("/", 1)[0].rpartition("@")[2].split("?", 1)[0].split("#", 1)[0]
    return f"{scheme}{sep}{host}/{MASK}" if sep else MASK
