"""Plex Media Server webhook bodies, built the way Plex sends them.

Plex POSTs `multipart/form-data` with a `payload` part (JSON, with its own
`Content-Type: application/json`) and, for some events, a `thumb` part (a JPEG of a few
hundred KB). The payload shapes follow what Plex sends for the new agents (`plex://` guid
plus a `Guid` list) and the legacy ones (`com.plexapp.agents.*` guid, no `Guid` list).
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from tests.realplayers import EventRecorder, running
from trakt_scrobbled.clock import Clock
from trakt_scrobbled.events import PlayerEvent
from trakt_scrobbled.players.plex import PlexPlayer
from trakt_scrobbled.server import LocalServer

OWNER = "alice"
PLAYER_UUID = "r6yfkdnfggbh2bdnvkffwbms"
SERVER_UUID = "54664a3d8acc39983675640ec9ce00b70af9cc36"


def movie(
    *,
    legacy: bool = False,
    view_offset: int | None = None,
    duration: int = 8_160_000,
    rating_key: str = "1001",
    title: str = "The Matrix",
    year: int = 1999,
    file: str | None = None,
) -> dict[str, Any]:
    """`Metadata` of a library movie; times in milliseconds, as Plex has them."""
    meta: dict[str, Any] = {
        "librarySectionType": "movie",
        "ratingKey": rating_key,
        "key": f"/library/metadata/{rating_key}",
        "studio": "Warner Bros.",
        "type": "movie",
        "title": title,
        "librarySectionTitle": "Movies",
        "librarySectionID": 1,
        "librarySectionKey": "/library/sections/1",
        "contentRating": "R",
        "summary": "A hacker learns the truth.",
        "rating": 8.3,
        "year": year,
        "thumb": f"/library/metadata/{rating_key}/thumb/1700000000",
        "art": f"/library/metadata/{rating_key}/art/1700000000",
        "duration": duration,
        "originallyAvailableAt": f"{year}-03-31",
        "addedAt": 1_600_000_000,
        "updatedAt": 1_700_000_000,
    }
    if legacy:
        meta["guid"] = "com.plexapp.agents.imdb://tt0133093?lang=en"
    else:
        meta["guid"] = "plex://movie/5d7768ba96b655001fdc0408"
        meta["Guid"] = [{"id": "imdb://tt0133093"}, {"id": "tmdb://603"}, {"id": "tvdb://169"}]
    if view_offset is not None:
        meta["viewOffset"] = view_offset
    if file is not None:
        meta["Media"] = [{"id": 1, "duration": duration, "Part": [{"id": 1, "file": file}]}]
    return meta


def episode(
    *,
    legacy: bool = False,
    view_offset: int | None = None,
    duration: int = 3_480_000,
    rating_key: str = "2002",
    season: int | None = 1,
    number: int | None = 2,
) -> dict[str, Any]:
    """`Metadata` of a library episode (Breaking Bad S01E02)."""
    meta: dict[str, Any] = {
        "librarySectionType": "show",
        "ratingKey": rating_key,
        "key": f"/library/metadata/{rating_key}",
        "parentRatingKey": "2001",
        "grandparentRatingKey": "2000",
        "type": "episode",
        "title": "Cat's in the Bag...",
        "grandparentKey": "/library/metadata/2000",
        "parentKey": "/library/metadata/2001",
        "librarySectionTitle": "TV Shows",
        "librarySectionID": 2,
        "grandparentTitle": "Breaking Bad",
        "parentTitle": "Season 1",
        "contentRating": "TV-MA",
        "summary": "Walt and Jesse dispose of a body.",
        "year": 2008,
        "thumb": f"/library/metadata/{rating_key}/thumb/1700000000",
        "duration": duration,
        "originallyAvailableAt": "2008-01-27",
        "addedAt": 1_600_000_000,
        "updatedAt": 1_700_000_000,
    }
    if season is not None:
        meta["parentIndex"] = season
    if number is not None:
        meta["index"] = number
    if legacy:
        meta["guid"] = "com.plexapp.agents.thetvdb://81189/1/2?lang=en"
        meta["parentGuid"] = "com.plexapp.agents.thetvdb://81189/1?lang=en"
        meta["grandparentGuid"] = "com.plexapp.agents.thetvdb://81189?lang=en"
    else:
        meta["guid"] = "plex://episode/5d9c086c46115600200aa2fe"
        meta["parentGuid"] = "plex://season/602e67d31d3358002c411c1e"
        meta["grandparentGuid"] = "plex://show/5d9c086c46115600200aa2f2"
        meta["Guid"] = [{"id": "imdb://tt1054724"}, {"id": "tmdb://62086"}, {"id": "tvdb://349232"}]
    if view_offset is not None:
        meta["viewOffset"] = view_offset
    return meta


def trailer() -> dict[str, Any]:
    """A cinema trailer or pre-roll: Plex calls it a `clip`."""
    return {
        "ratingKey": "3003",
        "key": "/library/metadata/3003",
        "guid": "plex://movie/5d7768ba96b655001fdc0408/extras/trailer",
        "type": "clip",
        "subtype": "trailer",
        "extraType": 1,
        "title": "The Matrix Resurrections - Official Trailer",
        "duration": 150_000,
    }


def track() -> dict[str, Any]:
    """A music track (Plex's own documentation example)."""
    return {
        "librarySectionType": "artist",
        "ratingKey": "1936545",
        "key": "/library/metadata/1936545",
        "parentRatingKey": "1936544",
        "grandparentRatingKey": "1936543",
        "guid": "com.plexapp.agents.plexmusic://gracenote/track/7572499?lang=en",
        "librarySectionID": 1224,
        "type": "track",
        "title": "Love The One You're With",
        "grandparentTitle": "Stephen Stills",
        "parentTitle": "Stephen Stills",
        "index": 1,
        "parentIndex": 1,
        "duration": 183_000,
    }


def webhook(
    event: str,
    metadata: Mapping[str, Any],
    *,
    user: bool = True,
    owner: bool = True,
    account: str = OWNER,
    account_id: int = 1,
    player_uuid: str = PLAYER_UUID,
    player_title: str = "Plex Web (Firefox)",
) -> dict[str, Any]:
    """A whole payload; `user` is True when the play is the webhook owner's own."""
    return {
        "event": event,
        "user": user,
        "owner": owner,
        "Account": {
            "id": account_id,
            "thumb": f"https://plex.tv/users/{account_id:x}/avatar?c=1700000000",
            "title": account,
        },
        "Server": {"title": "Office", "uuid": SERVER_UUID},
        "Player": {
            "local": True,
            "publicAddress": "203.0.113.7",
            "title": player_title,
            "uuid": player_uuid,
        },
        "Metadata": dict(metadata),
    }


def jpeg(size: int = 300_000, seed: int = 7) -> bytes:
    """Bytes that start and end like a JPEG, `size` long (Plex's poster thumbnail)."""
    rng = random.Random(seed)
    header = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return header + rng.randbytes(max(0, size - len(header) - 2)) + b"\xff\xd9"


def multipart(
    payload: Mapping[str, Any] | bytes,
    *,
    thumb: bytes | None = None,
    boundary: str = "------------------------b1d3a9c26f0e4c7e",
) -> tuple[bytes, str]:
    """(body, Content-Type) of a Plex webhook POST; `payload` as bytes sends it verbatim."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    parts = [
        b'Content-Disposition: form-data; name="payload"\r\n'
        b"Content-Type: application/json\r\n\r\n" + data
    ]
    if thumb is not None:
        parts.append(
            b'Content-Disposition: form-data; name="thumb"; filename="image.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + thumb
        )
    return multipart_parts(parts, boundary=boundary)


def multipart_parts(parts: list[bytes], *, boundary: str) -> tuple[bytes, str]:
    """Raw parts (headers, blank line, content) framed by `boundary`."""
    sep = b"--" + boundary.encode()
    body = b"".join(sep + b"\r\n" + part + b"\r\n" for part in parts) + sep + b"--\r\n"
    return body, f"multipart/form-data; boundary={boundary}"


def sessions(
    view_offset: int,
    *,
    rating_key: str = "1001",
    player_uuid: str = PLAYER_UUID,
) -> dict[str, Any]:
    """What `GET /status/sessions` answers (JSON) while that player plays that item."""
    return {
        "MediaContainer": {
            "size": 1,
            "Metadata": [
                {
                    "ratingKey": rating_key,
                    "type": "movie",
                    "title": "The Matrix",
                    "viewOffset": view_offset,
                    "duration": 8_160_000,
                    "Player": {
                        "address": "192.0.2.10",
                        "machineIdentifier": player_uuid,
                        "state": "playing",
                        "title": "Plex Web (Firefox)",
                    },
                    "Session": {"id": "abc", "location": "lan"},
                    "User": {"id": "1", "title": OWNER},
                }
            ],
        }
    }


# --- a harness: the real listener and adapter, on an ephemeral port ------------------------------

SECRET = "s3cr3t-Webhook-Token-0123456789"


@dataclass
class Stack:
    """A running `LocalServer` + `PlexPlayer`, an httpx client, and the events emitted."""

    server: LocalServer
    player: PlexPlayer
    events: EventRecorder
    client: httpx.AsyncClient

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/plex/{SECRET}"

    async def post(
        self, payload: Mapping[str, Any] | bytes, *, thumb: bytes | None = None
    ) -> httpx.Response:
        body, ctype = multipart(payload, thumb=thumb)
        return await self.client.post(self.url, content=body, headers={"Content-Type": ctype})

    async def send(self, event: str, metadata: Mapping[str, Any], **kw: Any) -> list[PlayerEvent]:
        """POST one webhook; the events it caused (the handler runs before the answer)."""
        start = len(self.events.events)
        response = await self.post(webhook(event, metadata, **kw))
        assert response.status_code == 200, response.text
        return self.events.events[start:]


@contextlib.asynccontextmanager
async def plex_stack(
    accounts: Sequence[str] = (),
    *,
    clock: Clock | None = None,
    server_url: str = "",
    server_token: str = "",
) -> AsyncIterator[Stack]:
    player = PlexPlayer(
        accounts, secret=SECRET, clock=clock, server_url=server_url, server_token=server_token
    )
    [route] = player.routes()  # the listener mounts what the player offers, as the app does
    server = LocalServer("127.0.0.1", 0, plex_secret=route.secret, on_webhook=route.handler)
    async with running(player) as events, server, httpx.AsyncClient(timeout=10.0) as client:
        yield Stack(server, player, events, client)
