"""Plex without Plex Pass: follow the server's notification websocket live.

The server tells any token holder, the moment a client plays, pauses, seeks or stops, which
session (`sessionKey`), item (`ratingKey`), player (`clientIdentifier`) and position it is
about, but not whose play it is. So the first notification of a session asks `/status/sessions`
for its account (and `/library/metadata` for the item's Guid ids, duration and numbers, through
a small cache); the session's later notifications wait behind that lookup, in order, and are
then applied at once. Accounts are told apart by the account id Plex gives each session, never
by the device. A token that is not the server owner's cannot read `/status/sessions` (403), but
its websocket only carries its own plays: those are then its owner's own.

A dropped connection (or a restarted server) is reconnected with capped backoff; plays in
progress are then read back from `/status/sessions`. A play the server shows again on the same
player with the same item goes on as the same play, never a second one; one the server no
longer shows is given `gone_after` seconds to come back (a restarted server forgets its
sessions until the clients report in) before it ends where it was last known to be.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from trakt_scrobbled.clock import Clock, SystemClock
from trakt_scrobbled.events import (
    Ended,
    EndReason,
    MediaInfo,
    Paused,
    PlayerEvent,
    Playing,
    Progressed,
    Resumed,
    Seeked,
)
from trakt_scrobbled.logonce import LogOnce
from trakt_scrobbled.players import Connection, Emit, Route, doing_label, emit_safely
from trakt_scrobbled.players.playhead import extrapolate
from trakt_scrobbled.players.plex import (
    AccountFilter,
    Outcome,
    _dict,
    _key_text,
    _millis,
    read_item,
)
from trakt_scrobbled.players.plex_server import (
    PlexError,
    PlexForbidden,
    PlexServer,
    PlexSession,
    PlexUnauthorized,
)

__all__ = ["LiveCredentials", "PlexLivePlayer"]

log = logging.getLogger(__name__)

OWNER_ID = "1"
"""The account id a Plex server gives its owner in `/status/sessions`."""
SEEK_TOLERANCE = 10.0
"""Seconds a reported position may be off the extrapolated one without being a seek."""
FIRST_RETRY = 0.25
MAX_RETRY = 15.0
"""Seconds: reconnect backoff doubles from FIRST_RETRY up to this."""
REFUSED_RETRY = 60.0
"""Seconds between tries while the token is refused (a new `plex login` is picked up then)."""
STABLE = 1.0
"""Seconds a connection must last for the backoff to start over (a server that takes the
connection and drops it at once is retried ever more slowly)."""
GONE_AFTER = 60.0
"""Seconds a play the server no longer shows may take to come back before it ends."""
CHECK_EVERY = 1.0
RESOLVE_TRIES = 3
RECENT = 3600.0
MAX_KNOWN = 256
"""Sessions (and players) remembered; the oldest are forgotten first."""


class _State(StrEnum):
    PLAYING = "playing"
    PAUSED = "paused"
    STOPPED = "stopped"
    BUFFERING = "buffering"


@dataclass(frozen=True, slots=True)
class LiveCredentials:
    """Where the server is and how to talk to it, read afresh before every connection."""

    url: str
    token: str = field(repr=False)
    client_identifier: str
    account_id: str | None = None
    """The token's own plex.tv account id, when `plex login` learnt it."""
    account: str | None = None
    """The token's own account name, when known."""


@dataclass(frozen=True, slots=True)
class _Note:
    """One `PlaySessionStateNotification` (or a session read back after a reconnect)."""

    session_key: str
    rating_key: str
    client: str | None
    state: _State
    offset: float | None


@dataclass(frozen=True, slots=True)
class _Resolved:
    """Whose a session's item is, and what it is; `source` None when it is not ours to play."""

    source: str | None
    reason: str | None
    media: MediaInfo | None = None
    player_title: str = "Plex player"
    account: str = "?"
    user: str | None = None
    """The Plex account's name, for the household's routing (None: unknown)."""
    user_id: str | None = None
    """Its plex.tv id where known (the owner's, from `plex login`), else the server's."""


@dataclass(slots=True)
class _Track:
    rating_key: str
    session_key: str
    media: MediaInfo
    position: float
    at: float
    paused: bool
    resolved: _Resolved
    """Whose play it is, as looked up when it began: a play going on under a new session key
    (a restarted server) is the same play, not looked up again."""


@dataclass(frozen=True, slots=True)
class _Seen:
    player_title: str
    account: str
    at: float


class Malformed(ValueError):
    """A notification that is not what Plex documents."""


def parse_notification(text: str) -> list[_Note]:
    """The play-state notes of one websocket message; [] for other kinds of notification."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise Malformed("not JSON") from err
    container = data.get("NotificationContainer") if isinstance(data, dict) else None
    if not isinstance(container, dict):
        raise Malformed("no NotificationContainer")
    if container.get("type") != "playing":
        return []  # timeline, activity, status, transcodeSession...: not about plays
    entries = container.get("PlaySessionStateNotification")
    if not isinstance(entries, list):
        raise Malformed("a playing notification without PlaySessionStateNotification")
    notes: list[_Note] = []
    for entry in entries:
        entry = _dict(entry)
        session_key = _key_text(entry.get("sessionKey"))
        rating_key = _key_text(entry.get("ratingKey"))
        state = entry.get("state")
        if session_key is None or rating_key is None or state not in _STATES:
            raise Malformed("a PlaySessionStateNotification without sessionKey/ratingKey/state")
        notes.append(
            _Note(
                session_key=session_key[:64],
                rating_key=rating_key[:32],
                client=(_key_text(entry.get("clientIdentifier")) or "")[:128] or None,
                state=_State(state),
                offset=_millis(entry.get("viewOffset")),
            )
        )
    return notes


_STATES = frozenset(s.value for s in _State)
_SESSION_STATES = {"playing": _State.PLAYING, "paused": _State.PAUSED}


class PlexLivePlayer:
    """Every player of one Plex server, through one websocket; one source per player."""

    name = "plex"

    def __init__(
        self,
        credentials: Callable[[], LiveCredentials],
        accounts: Sequence[str] = (),
        *,
        clock: Clock | None = None,
        gone_after: float = GONE_AFTER,
        first_retry: float = FIRST_RETRY,
        max_retry: float = MAX_RETRY,
        refused_retry: float = REFUSED_RETRY,
    ) -> None:
        self._credentials = credentials
        self._accounts = AccountFilter(accounts)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._gone_after = gone_after
        self._first_retry = first_retry
        self._max_retry = max_retry
        self._refused_retry = refused_retry
        self._emit: Emit | None = None
        self._server: PlexServer | None = None
        self._me: LiveCredentials | None = None
        self._owner_view: bool | None = None
        """True: the token reads every session (the owner's); False: only its own; None: unknown."""
        self._connected = False
        self._sessions_lock = asyncio.Lock()
        self._tracks: dict[str, _Track] = {}
        self._unconfirmed: dict[str, float] = {}
        """Plays the server does not show right now, by source, since when."""
        self._resolved: OrderedDict[tuple[str, str], _Resolved] = OrderedDict()
        self._pending: dict[str, list[_Note]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._seen: OrderedDict[str, _Seen] = OrderedDict()
        self._ignored: dict[str, int] = {}
        self._said = LogOnce(log)

    # --- the Player protocol -----------------------------------------------------------------

    async def run(self, emit: Emit) -> None:
        """Follow the server until cancelled, reconnecting by itself."""
        self._emit = emit
        watchdog = asyncio.get_running_loop().create_task(self._watch_gone(), name="plex-gone")
        try:
            await self._follow()
        finally:
            self._emit = None
            self._connected = False
            watchdog.cancel()
            tasks = [watchdog, *self._tasks]
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
            self._tasks.clear()

    def connections(self) -> list[Connection]:
        """The server while the websocket is open, then every player seen in the last hour."""
        now = self._clock.monotonic()
        out: list[Connection] = []
        server = self._server
        if self._connected and server is not None:
            if self._owner_view is False:
                sees = "not the owner's token: its own plays only"
            else:
                sees = "owner's token: every account's plays"
            out.append(Connection(f"plex-server:{server.host}", f"followed live ({sees})"))
        for source, seen in list(self._seen.items()):
            track = self._tracks.get(source)
            if track is None and now - seen.at > RECENT:
                del self._seen[source]
                continue
            doing = "idle" if track is None else doing_label(track.media, paused=track.paused)
            out.append(Connection(source, f"{seen.player_title} ({seen.account}): {doing}"))
        return out

    def ignored_counts(self) -> Mapping[str, int]:
        """Sessions (and notifications) ignored since start, by reason."""
        return dict(self._ignored)

    def routes(self) -> tuple[Route, ...]:
        """None: live mode asks the server, it is not told by webhooks."""
        return ()

    @property
    def connected(self) -> bool:
        return self._connected

    # --- the connection -----------------------------------------------------------------------

    async def _follow(self) -> None:
        server: PlexServer | None = None
        try:
            delay = self._first_retry
            while True:
                creds = self._credentials()
                if not creds.url or not creds.token:
                    self._said.once(
                        "credentials",
                        logging.ERROR,
                        "plex: live mode needs the server and a token: run `trakt-scrobbled "
                        "plex login` (or set [plex] url and token)",
                    )
                    await self._clock.sleep(self._refused_retry)
                    continue
                self._said.clear("credentials")
                if server is None or creds != self._me:
                    # One client per server and token: its metadata cache outlives reconnects.
                    if server is not None:
                        await server.aclose()
                    server = PlexServer(
                        creds.url,
                        creds.token,
                        client_identifier=creds.client_identifier,
                        clock=self._clock,
                    )
                    self._me, self._owner_view = creds, None
                opened_at = await self._connect_once(server)
                wait = self._refused_retry if self._said.said("refused") else delay
                if opened_at is not None and self._clock.monotonic() - opened_at >= STABLE:
                    delay = self._first_retry
                    wait = min(wait, delay)
                else:
                    delay = min(delay * 2, self._max_retry)
                await self._clock.sleep(wait)
        finally:
            if server is not None:
                await server.aclose()

    async def _connect_once(self, server: PlexServer) -> float | None:
        """Follow `server` until the connection ends; when it had opened, or None."""
        opened_at: float | None = None

        def opened() -> None:
            nonlocal opened_at
            opened_at = self._clock.monotonic()
            self._opened(server)

        self._server = server
        try:
            await server.listen(opened, self._on_message)
            self._lost(server.host, "the server closed the connection")
        except PlexUnauthorized as err:
            self._said.once("refused", logging.ERROR, "plex: %s", err)
            self._lost(server.host, "the token was refused")
        except PlexError as err:
            self._said.once("unreachable", logging.WARNING, "plex: %s; retrying", err)
            self._lost(server.host, str(err))
        finally:
            self._server = None
        return opened_at

    def _opened(self, server: PlexServer) -> None:
        self._connected = True
        self._said.clear("refused")
        self._said.clear("unreachable")
        log.info("plex: following the Plex server at %s live", server.host)
        self._spawn(self._resync(server), name="plex-resync")

    def _lost(self, host: str, why: str) -> None:
        if self._connected:
            log.warning("plex: lost the Plex server at %s (%s); reconnecting", host, why)
        self._connected = False
        now = self._clock.monotonic()
        for source in self._tracks:
            self._unconfirmed.setdefault(source, now)
        for task in list(self._tasks):
            task.cancel()  # lookups of a lost connection: they are redone on the next one
        self._pending.clear()
        # A restarted server numbers its sessions anew: a session key seen before the drop
        # may be someone else's play after it. Every session is looked up again.
        self._resolved.clear()

    async def _resync(self, server: PlexServer) -> None:
        """After a (re)connect: what plays now, so that nothing started meanwhile is missed."""
        sessions = await self._read_sessions(server)
        if sessions is None:
            return  # only our own plays are visible: their next notifications confirm them
        visible: set[str] = set()
        for session in sessions:
            state = _SESSION_STATES.get(session.state or "", _State.PLAYING)
            if session.rating_key is None:
                continue
            if session.client is not None:
                visible.add(f"plex:{session.client}")
            note = _Note(session.session_key, session.rating_key, session.client, state, None)
            if session.offset is not None:
                note = _Note(note.session_key, note.rating_key, note.client, state, session.offset)
            self._take(note)
        now = self._clock.monotonic()
        for source in self._tracks:
            if source not in visible:
                self._unconfirmed.setdefault(source, now)

    async def _read_sessions(self, server: PlexServer) -> list[PlexSession] | None:
        """`/status/sessions`, or None when this token may not read it (not the owner's)."""
        async with self._sessions_lock:  # one question at a time: a non-owner's 403 once
            return await self._read_sessions_now(server)

    async def _read_sessions_now(self, server: PlexServer) -> list[PlexSession] | None:
        if self._owner_view is False:
            return None
        try:
            sessions = await server.sessions()
        except (PlexForbidden, PlexUnauthorized):
            # The websocket took this token: it is valid, just not the owner's.
            if self._owner_view is None:
                log.info(
                    "plex: this token is not the server owner's: only its own account's "
                    "plays are followed"
                )
            self._owner_view = False
            return None
        self._owner_view = True
        return sessions

    async def _watch_gone(self) -> None:
        while True:
            await self._clock.sleep(CHECK_EVERY)
            now = self._clock.monotonic()
            for source, since in list(self._unconfirmed.items()):
                if now - since < self._gone_after:
                    continue
                del self._unconfirmed[source]
                track = self._tracks.pop(source, None)
                if track is not None:
                    log.info("plex: %s is gone from the server; its play ends", source)
                    self._send(Ended(source, self._estimate(track), EndReason.GONE))

    # --- notifications ------------------------------------------------------------------------

    def _on_message(self, text: str) -> None:
        try:
            notes = parse_notification(text)
        except Malformed as err:
            self._count("malformed")
            self._said.once(
                "malformed",
                logging.WARNING,
                "plex: a notification not understood (%s); ignored",
                err,
            )
            return
        for note in notes:
            try:
                self._take(note)
            except Exception:
                log.exception("plex: could not handle a notification")

    def _take(self, note: _Note) -> None:
        """Apply `note` now if its session is known, else after its lookup (in order)."""
        pending = self._pending.get(note.session_key)
        if pending is not None:
            pending.append(note)
            return
        resolved = self._resolved.get((note.session_key, note.rating_key))
        if resolved is not None:
            self._apply(note, resolved)
            return
        if len(self._pending) >= MAX_KNOWN:
            self._count("overload")  # a flood of new sessions: never an unbounded backlog
            return
        self._pending[note.session_key] = [note]
        server = self._server
        if server is not None:
            self._spawn(self._resolve_pending(server, note.session_key), name="plex-lookup")

    async def _resolve_pending(self, server: PlexServer, session_key: str) -> None:
        try:
            while notes := self._pending.get(session_key):
                key = (notes[0].session_key, notes[0].rating_key)
                if key not in self._resolved:
                    resolved = await self._resolve(server, notes[0])
                    if resolved is None:
                        self._pending.pop(session_key, None)
                        return
                    self._remember_session(key, resolved)
                while notes and (notes[0].session_key, notes[0].rating_key) in self._resolved:
                    note = notes.pop(0)
                    self._apply(note, self._resolved[(note.session_key, note.rating_key)])
                if not notes:
                    self._pending.pop(session_key, None)
        except BaseException:
            self._pending.pop(session_key, None)
            raise

    def _remember_session(self, key: tuple[str, str], resolved: _Resolved) -> None:
        self._resolved[key] = resolved
        self._resolved.move_to_end(key)
        while len(self._resolved) > MAX_KNOWN:
            self._resolved.popitem(last=False)
        if resolved.source is None and resolved.reason is not None:
            self._count(resolved.reason)

    async def _resolve(self, server: PlexServer, note: _Note) -> _Resolved | None:
        """Whose play `note` is, and what it plays; None when the server cannot say now."""
        for attempt in range(RESOLVE_TRIES):
            try:
                return await self._lookup(server, note)
            except PlexError as err:
                if attempt + 1 == RESOLVE_TRIES:
                    self._said.once(
                        "lookup", logging.WARNING, "plex: cannot look a play up (%s)", err
                    )
                    return None
            except _NotListedYet:
                if attempt + 1 == RESOLVE_TRIES:
                    break
            await self._clock.sleep(0.2 * (attempt + 1))
        # The owner's token sees every session: one it never lists is not attributed to anyone.
        return _Resolved(None, "unknown_account")

    async def _lookup(self, server: PlexServer, note: _Note) -> _Resolved:
        me = self._me
        sessions = await self._read_sessions(server)
        client = note.client
        player_title = "Plex player"
        if sessions is None:
            account = (me.account if me is not None else None) or "you"
            allowed = self._accounts.allows(account, own=True) or (me is None or not me.account)
            user = me.account if me is not None else None
            user_id = me.account_id if me is not None else None
        else:
            match = next((s for s in sessions if s.session_key == note.session_key), None)
            if match is None and (going_on := self._going_on(note)) is not None:
                return going_on
            if match is None:
                later = self._pending.get(note.session_key, [note])
                if any(n.state is _State.STOPPED for n in later):
                    return _Resolved(None, None)  # over before it could be looked up
                raise _NotListedYet
            own = match.account_id == OWNER_ID or (
                me is not None and me.account_id is not None and match.account_id == me.account_id
            )
            account = match.account or f"account {match.account_id or '?'}"
            allowed = self._accounts.allows(match.account, own=own)
            user = match.account
            # The server calls its owner "1"; a webhook (and a routing rule) says the owner's
            # plex.tv id, which `plex login` learnt.
            own_id = me.account_id if own and me is not None else None
            user_id = own_id or match.account_id
            client = match.client or client
            player_title = match.player_title
        if not allowed:
            return _Resolved(None, "account", account=account, player_title=player_title)
        if client is None:
            return _Resolved(None, "no_player")
        meta = await server.metadata(note.rating_key)
        if meta is None:
            return _Resolved(None, "not_found")
        media = read_item(meta)
        if isinstance(media, Outcome):
            return _Resolved(None, media.reason)
        return _Resolved(f"plex:{client}", None, media, player_title, account, user, user_id)

    def _going_on(self, note: _Note) -> _Resolved | None:
        """A play we follow, under a session key the server no longer lists (a restarted server
        gave it a new one, and it may be over already): the same player, the same item."""
        if note.client is None:
            return None
        source = f"plex:{note.client}"
        track = self._tracks.get(source)
        if track is None or track.rating_key != note.rating_key:
            return None
        return track.resolved

    # --- from notifications to events ---------------------------------------------------------

    def _apply(self, note: _Note, resolved: _Resolved) -> None:
        source, media = resolved.source, resolved.media
        if source is None or media is None:
            if note.state is _State.STOPPED:
                self._forget(note)
            return
        self._saw(source, resolved)
        self._unconfirmed.pop(source, None)
        offset = note.offset
        if offset is not None and media.duration is not None:
            offset = min(offset, media.duration)
        track = self._tracks.get(source)
        if track is not None and track.rating_key != note.rating_key:
            if note.state is _State.STOPPED:
                self._forget(note)
                return  # a late stop of an item already replaced
            self._end(source, track, EndReason.REPLACED, None)
            track = None
        if note.state is _State.STOPPED:
            self._forget(note)
            if track is not None:
                self._end(source, track, EndReason.STOPPED, offset)
            return
        if track is None:
            paused = note.state is _State.PAUSED
            position = offset if offset is not None else 0.0
            track = _Track(
                note.rating_key,
                note.session_key,
                media,
                position,
                self._clock.monotonic(),
                paused,
                resolved,
            )
            self._tracks[source] = track
            log.info(
                "plex: %s (%s) plays %s",
                resolved.player_title,
                resolved.account,
                media.show_title or media.title or "an item",
            )
            self._send(
                Playing(
                    source,
                    media,
                    position=position,
                    duration=media.duration,
                    paused=paused,
                    user=resolved.user,
                    user_id=resolved.user_id,
                )
            )
            return
        track.session_key = note.session_key
        if note.state is _State.BUFFERING:
            if offset is not None:
                self._remember(track, offset)
            return
        moved = offset is not None and abs(offset - self._estimate(track)) > SEEK_TOLERANCE
        if note.state is _State.PAUSED:
            position = offset if offset is not None else self._estimate(track)
            self._remember(track, position)
            if not track.paused:
                track.paused = True
                self._send(Paused(source, position))
            elif moved:
                self._send(Seeked(source, position))
            return
        if track.paused:  # playing again
            position = offset if offset is not None else track.position
            self._remember(track, position)
            track.paused = False
            self._send(Resumed(source, position))
            return
        if offset is None:
            return
        self._remember(track, offset)
        if moved:
            self._send(Seeked(source, offset))
        else:
            self._send(Progressed(source, offset, media.duration))

    def _forget(self, note: _Note) -> None:
        self._resolved.pop((note.session_key, note.rating_key), None)

    def _end(self, source: str, track: _Track, reason: EndReason, offset: float | None) -> None:
        position = offset if offset is not None else self._estimate(track)
        del self._tracks[source]
        self._unconfirmed.pop(source, None)
        self._send(Ended(source, position, reason))

    def _estimate(self, track: _Track) -> float:
        """The last known position, extrapolated while playing, capped at the duration."""
        return extrapolate(
            track.position,
            track.at,
            self._clock.monotonic(),
            moving=not track.paused,
            duration=track.media.duration,
        )

    def _remember(self, track: _Track, position: float) -> None:
        track.position = position
        track.at = self._clock.monotonic()

    def _send(self, event: PlayerEvent) -> None:
        emit = self._emit
        if emit is not None:
            emit_safely(emit, event)

    # --- bookkeeping --------------------------------------------------------------------------

    def _saw(self, source: str, resolved: _Resolved) -> None:
        self._seen.pop(source, None)
        self._seen[source] = _Seen(resolved.player_title, resolved.account, self._clock.monotonic())
        while len(self._seen) > MAX_KNOWN:
            self._seen.popitem(last=False)

    def _count(self, reason: str) -> None:
        self._ignored[reason] = self._ignored.get(reason, 0) + 1

    def _spawn(self, coro: Any, *, name: str) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            if not finished.cancelled() and (err := finished.exception()) is not None:
                log.error("plex: %s failed", name, exc_info=err)

        task.add_done_callback(done)


class _NotListedYet(Exception):
    """The owner's sessions do not show a session yet (its notification came first)."""
