"""The `trakt-scrobbled` command. User errors print one clear message and exit 1, no traceback."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from trakt_scrobbled import __version__
from trakt_scrobbled.config import Config, ConfigError, load_config
from trakt_scrobbled.paths import Paths, ensure_state_dir, resolve_paths

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_NOT_BUILT = 2

log = logging.getLogger("trakt_scrobbled")


class UserError(Exception):
    """Something the user can fix; printed without a traceback."""


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="config file (default: $XDG_CONFIG_HOME/trakt-scrobbled/config.toml)",
    )
    p.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log at debug level"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trakt-scrobbled",
        description="Scrobbles what mpv, Kodi and Plex play to Trakt.tv.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def cmd(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _add_common(p)
        return p

    cmd("run", "run the daemon in the foreground (what systemd starts)")
    cmd("login", "log in to Trakt with a device code")
    cmd("logout", "revoke the Trakt login and delete the stored token")
    p = cmd("status", "what the running daemon is doing")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = cmd("queue", "the outbox: queued and failed scrobbles")
    p.add_argument("--json", action="store_true", help="one JSON object per row")
    qsub = p.add_subparsers(dest="queue_action", metavar="ACTION")
    r = qsub.add_parser("retry", help="queue failed rows again")
    _add_common(r)
    target = r.add_mutually_exclusive_group(required=True)
    target.add_argument("id", nargs="?", type=int, help="row id")
    target.add_argument("--all", action="store_true", help="every failed row")
    d = qsub.add_parser("drop", help="delete a row")
    _add_common(d)
    d.add_argument("id", type=int, help="row id")

    p = cmd("identify", "what files would be scrobbled as")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="one JSON object per path, one a line")
    p.add_argument("--offline", action="store_true", help="parse names only; ask Trakt nothing")

    p = cmd("config", "configuration commands")
    csub = p.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    c = csub.add_parser("check", help="validate the config file; list every problem")
    _add_common(c)

    cmd("doctor", "check config, login, Trakt, players and the service")

    p = cmd("service", "the systemd user service")
    ssub = p.add_subparsers(dest="service_action", metavar="ACTION", required=True)
    i = ssub.add_parser("install", help="write the user unit for this installation")
    _add_common(i)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(getattr(args, "verbose", False))
    handlers: dict[str, Callable[[argparse.Namespace, Mapping[str, str]], int]] = {
        "run": cmd_run,
        "login": cmd_login,
        "logout": cmd_logout,
        "status": cmd_status,
        "queue": cmd_queue,
        "identify": cmd_identify,
        "config": cmd_config,
        "doctor": cmd_doctor,
        "service": cmd_service,
    }
    handler = handlers.get(args.command)
    try:
        if handler is None:
            print(
                f"trakt-scrobbled {args.command}: not built yet in this version",
                file=sys.stderr,
            )
            return EXIT_NOT_BUILT
        return handler(args, os.environ)
    except UserError as err:
        print(f"trakt-scrobbled: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130


def _setup_logging(verbose: bool) -> None:
    # Under systemd the journal adds its own timestamps.
    fmt = "%(levelname)s %(name)s: %(message)s"
    if "JOURNAL_STREAM" not in os.environ:
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=fmt)
    for noisy in ("httpx", "httpcore", "watchdog", "asyncio", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # It warns about each malformed webhook body before raising; the listener logs those once.
    logging.getLogger("python_multipart").setLevel(logging.ERROR)


def _load(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[Config, Paths]:
    override: Path | None = getattr(args, "config", None)
    paths = resolve_paths(env, override)
    try:
        config = load_config(paths.config_file, env, explicit=override is not None)
    except ConfigError as err:
        raise UserError(f"the config has problems:\n{err}") from err
    return config, paths


def cmd_run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from trakt_scrobbled import app
    from trakt_scrobbled.lock import AlreadyRunning
    from trakt_scrobbled.store import StoreError

    config, paths = _load(args, env)
    if not getattr(args, "verbose", False):
        logging.getLogger().setLevel(config.logging.level.numeric)
    try:
        asyncio.run(app.run(config, paths, env))
    except (StoreError, AlreadyRunning) as err:
        raise UserError(str(err)) from err
    return EXIT_OK


def _need_client(config: Config) -> None:
    missing = [
        key
        for key, value in (
            ("client_id", config.trakt.client_id),
            ("client_secret", config.trakt.client_secret),
        )
        if not value
    ]
    if missing:
        raise UserError(
            f"set [trakt] {' and '.join(missing)} in the config "
            "(or TRAKT_CLIENT_ID / TRAKT_CLIENT_SECRET); create an app at "
            "https://trakt.tv/oauth/applications"
        )


def cmd_login(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    config, paths = _load(args, env)
    _need_client(config)
    try:
        return asyncio.run(_login(config, paths))
    except KeyboardInterrupt:
        print("\nlogin cancelled", file=sys.stderr)
        return 130


async def _login(config: Config, paths: Paths) -> int:
    from trakt_scrobbled.clock import SystemClock
    from trakt_scrobbled.trakt.auth import TokenStore
    from trakt_scrobbled.trakt.client import TraktClient
    from trakt_scrobbled.trakt.device import LoginFailed, poll_for_token, request_code
    from trakt_scrobbled.trakt.ratelimit import PostRateLimiter

    clock = SystemClock()
    tty = sys.stdout.isatty()
    async with TraktClient(
        config.trakt.api_url, config.trakt.client_id, PostRateLimiter(clock)
    ) as client:
        try:
            code = await request_code(client, config.trakt.client_id)
            print(f"Open {code.verification_url} and enter the code:  {code.user_code}")
            print(f"or open {code.activate_url}, or scan:")
            print(_qr_code(code.activate_url), end="")
            print("Waiting for approval (Ctrl-C to cancel)...", flush=True)

            def progress(left: float) -> None:
                if tty:
                    print(
                        f"\r  code valid for {int(left) // 60}:{int(left) % 60:02d} ",
                        end="",
                        flush=True,
                    )

            token = await poll_for_token(
                client,
                code,
                clock,
                client_id=config.trakt.client_id,
                client_secret=config.trakt.client_secret,
                on_poll=progress,
            )
        except LoginFailed as err:
            if tty:
                print()
            raise UserError(f"{err}: run the login again" if err.again else str(err)) from err
    if tty:
        print()
    try:
        ensure_state_dir(paths)
        TokenStore(paths.token_file).save(token)
    except OSError as err:
        raise UserError(
            f"logged in, but the token could not be saved to {paths.token_file} "
            f"({err.strerror}): fix that and run the login again"
        ) from err
    print(f"Logged in. The token is stored in {paths.token_file}.")
    return EXIT_OK


def _qr_code(url: str) -> str:
    """`url` as a QR code in block characters, or in ANSI colours where the output's encoding
    lacks them (a non-UTF-8 locale would raise mid-code): either way a phone can scan it."""
    import io

    import segno

    qr = segno.make(url, error="l")
    out = io.StringIO()
    qr.terminal(out=out, compact=True)
    text: str = out.getvalue()
    try:
        text.encode(sys.stdout.encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        out = io.StringIO()
        qr.terminal(out=out)
        text = out.getvalue()
    return text


def cmd_logout(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    config, paths = _load(args, env)
    return asyncio.run(_logout(config, paths))


async def _logout(config: Config, paths: Paths) -> int:
    from trakt_scrobbled.clock import SystemClock
    from trakt_scrobbled.trakt.auth import TokenStore
    from trakt_scrobbled.trakt.client import TraktClient
    from trakt_scrobbled.trakt.errors import TraktError
    from trakt_scrobbled.trakt.ratelimit import PostRateLimiter

    store = TokenStore(paths.token_file)
    token = store.load()
    if token is None:
        store.delete()
        print("not logged in")
        return EXIT_OK
    revoked = False
    if not (config.trakt.client_id and config.trakt.client_secret):
        print(
            "cannot revoke the token at Trakt without [trakt] client_id and client_secret",
            file=sys.stderr,
        )
    else:
        async with TraktClient(
            config.trakt.api_url, config.trakt.client_id, PostRateLimiter(SystemClock())
        ) as client:
            try:
                await client.post(
                    "/oauth/revoke",
                    {
                        "token": token.access_token,
                        "client_id": config.trakt.client_id,
                        "client_secret": config.trakt.client_secret,
                    },
                    auth=False,
                )
                revoked = True
            except TraktError as err:
                print(f"could not revoke the token at Trakt: {err}", file=sys.stderr)
    store.delete()
    if revoked:
        print("Logged out: the token was revoked at Trakt and deleted here.")
        return EXIT_OK
    print(
        "The token was deleted here but not revoked at Trakt; "
        "remove the app at https://trakt.tv/oauth/authorized_applications",
        file=sys.stderr,
    )
    return EXIT_USER_ERROR


def cmd_config(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    config, paths = _load(args, env)
    where = paths.config_file if paths.config_file.exists() else "defaults (no config file)"
    print(f"config OK: {where}")
    if not config.trakt.client_id:
        print("note: no Trakt client id yet: set [trakt] client_id (or TRAKT_CLIENT_ID)")
    return EXIT_OK


def cmd_status(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from trakt_scrobbled import status_view

    config, _ = _load(args, env)
    address = status_view.status_address(config.server)
    try:
        doc = asyncio.run(status_view.fetch_status(address))
    except status_view.NotRunning as err:
        print(f"{err}: {status_view.START_HINT}", file=sys.stderr)
        return status_view.EXIT_NOT_RUNNING
    except status_view.StatusUnavailable as err:
        raise UserError(str(err)) from err
    if args.json:
        print(status_view.dumps(doc))
    else:
        print(status_view.render_status(doc, now=time.time()), end="")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from trakt_scrobbled import doctor

    override: Path | None = getattr(args, "config", None)
    paths = resolve_paths(env, override)

    async def run() -> int:
        failed = 0
        async for check in doctor.diagnose(paths, env, explicit_config=override is not None):
            failed += check.failed
            print(check.render(), flush=True)
        return failed

    failed = asyncio.run(run())
    if failed:
        print(f"{failed} check(s) failed", file=sys.stderr)
        return EXIT_USER_ERROR
    print("nothing failed")
    return EXIT_OK


def cmd_service(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from trakt_scrobbled.service import install_unit

    try:
        target = install_unit(env)
    except OSError as err:
        raise UserError(f"cannot write the unit: {err}") from err
    print(f"wrote {target}")
    print("start it now and at every login with:")
    print("  systemctl --user daemon-reload && systemctl --user enable --now trakt-scrobbled")
    print("follow its log with:  journalctl --user -u trakt-scrobbled -f")
    return EXIT_OK


def cmd_queue(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from trakt_scrobbled.clock import SystemClock
    from trakt_scrobbled.outbox import Outbox
    from trakt_scrobbled.store import StoreError, open_db

    _, paths = _load(args, env)
    try:
        conn = open_db(paths.db_file)
    except StoreError as err:
        raise UserError(str(err)) from err
    try:
        outbox = Outbox(conn, SystemClock())
        action = getattr(args, "queue_action", None)
        if action == "retry":
            n = outbox.retry(None if args.all else args.id)
            if n == 0:
                raise UserError(
                    "no failed row to retry" if args.all else f"no failed row {args.id}"
                )
            print(f"{n} row(s) queued again; the daemon sends them shortly")
            return EXIT_OK
        if action == "drop":
            if not outbox.drop(args.id):
                raise UserError(f"no row {args.id}")
            print(f"row {args.id} dropped")
            return EXIT_OK
        rows = outbox.rows()
        if args.json:
            for row in rows:
                print(
                    json.dumps(
                        {
                            "id": row.id,
                            "state": str(row.state),
                            "kind": str(row.kind),
                            "item": row.label,
                            "watched": row.watched,
                            "created_at": row.created_at,
                            "attempts": row.attempts,
                            "error": row.error,
                            "body": row.body,
                        }
                    )
                )
            return EXIT_OK
        if not rows:
            print("the queue is empty")
            return EXIT_OK
        for row in rows:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.created_at))
            what = "watched" if row.watched else str(row.kind)
            line = f"{row.id:>6}  {row.state:<7}  {when}  {what:<8} {row.label}"
            if row.error:
                line += f"  ({row.error})"
            print(line)
        return EXIT_OK
    finally:
        conn.close()


def cmd_identify(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    config, paths = _load(args, env)
    results = asyncio.run(_identify(args.paths, config, paths, offline=args.offline))
    for result in results:
        print(json.dumps(result) if args.json else _describe_identity(result))
    # Non-zero when nothing was identified: scripts can tell "this would never scrobble".
    return EXIT_OK if any(r.get("type") != "unknown" for r in results) else 1


async def _identify(
    raw_paths: Sequence[str], config: Config, paths: Paths, *, offline: bool
) -> list[dict[str, object]]:
    from trakt_scrobbled import app
    from trakt_scrobbled.clock import SystemClock
    from trakt_scrobbled.identify import Identifier, identify_paths
    from trakt_scrobbled.store import StoreError, open_db
    from trakt_scrobbled.trakt.client import TraktClient
    from trakt_scrobbled.trakt.ratelimit import PostRateLimiter

    if offline:
        # The daemon's overrides and cache, without asking Trakt; a missing or unreadable
        # state database is no reason to refuse parsing names.
        conn = None
        if paths.db_file.exists():
            with contextlib.suppress(StoreError):
                conn = open_db(paths.db_file)
        if conn is None:
            return await identify_paths(raw_paths, None, offline=True)
        try:
            identifier = Identifier(
                None,
                conn,
                SystemClock(),
                overrides=app.overrides_of(config),
                min_duration=config.scrobble.min_duration,
            )
            return await identify_paths(raw_paths, identifier, offline=True)
        finally:
            conn.close()
    if not config.trakt.client_id:
        raise UserError(
            "identify asks Trakt and needs [trakt] client_id (or TRAKT_CLIENT_ID); "
            "use --offline to parse names only"
        )
    clock = SystemClock()
    try:
        conn = open_db(paths.db_file)
    except StoreError as err:
        raise UserError(str(err)) from err
    try:
        async with TraktClient(
            config.trakt.api_url, config.trakt.client_id, PostRateLimiter(clock)
        ) as client:
            identifier = Identifier(
                client,
                conn,
                clock,
                overrides=app.overrides_of(config),
                min_duration=config.scrobble.min_duration,
            )
            return await identify_paths(raw_paths, identifier)
    finally:
        conn.close()


def _describe_identity(result: Mapping[str, object]) -> str:
    kind = result.get("type")
    title = result.get("title") or "?"
    if kind == "movie":
        year = result.get("year")
        what = f"movie: {title}" + (f" ({year})" if year else "")
    elif kind == "episode":
        what = f"episode: {title}"
        if result.get("season") is not None and result.get("episode") is not None:
            what += f" S{result['season']:02}E{result['episode']:02}"
        elif result.get("absolute") is not None:
            what += f" #{result['absolute']}"
        episodes = result.get("episodes")
        if isinstance(episodes, list) and len(episodes) > 1:
            what += " (episodes " + ", ".join(str(e) for e in episodes) + ")"
    else:
        what = f"not scrobbled: {result.get('reason') or 'unknown'}"
        rejected = result.get("rejected")
        if isinstance(rejected, list):
            what += "".join(f"\n    rejected: {r}" for r in rejected)
    ids = result.get("ids")
    if isinstance(ids, dict) and ids:
        what += "  [" + " ".join(f"{k}={v}" for k, v in ids.items()) + "]"
    return f"{result.get('path')}\n  {what}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
