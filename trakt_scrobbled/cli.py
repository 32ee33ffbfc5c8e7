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

from trakt_scrobbled import __version__, logs
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


EPILOG = """\
first steps:
  trakt-scrobbled config init       write a commented starter config
  trakt-scrobbled login             log in to Trakt (a code, a URL and a QR code)
  trakt-scrobbled service install   start the daemon at every login (systemd user unit)
  trakt-scrobbled doctor            check everything; says what to fix

every day:
  trakt-scrobbled status            what the daemon is doing
  trakt-scrobbled queue             what waits to be sent, and what failed
  journalctl --user -u trakt-scrobbled -p warning   its warnings and errors
"""

_EXAMPLES = {
    "run": "example:\n  trakt-scrobbled run -v      the daemon in a terminal, with debug lines",
    "status": "examples:\n  trakt-scrobbled status\n  trakt-scrobbled status --json | jq .queue",
    "queue": (
        "examples:\n  trakt-scrobbled queue\n  trakt-scrobbled queue retry --all\n"
        "  trakt-scrobbled queue drop 42"
    ),
    "identify": (
        "examples:\n  trakt-scrobbled identify ~/Videos/The.Matrix.1999.mkv\n"
        "  trakt-scrobbled identify --offline --json *.mkv"
    ),
    "config": "examples:\n  trakt-scrobbled config init\n  trakt-scrobbled config check\n"
    "  trakt-scrobbled config accounts",
    "completion": (
        "examples:\n  trakt-scrobbled completion bash > ~/.local/share/bash-completion/"
        "completions/trakt-scrobbled\n"
        "  trakt-scrobbled completion zsh > ~/.zfunc/_trakt-scrobbled\n"
        "  trakt-scrobbled completion fish > ~/.config/fish/completions/trakt-scrobbled.fish"
    ),
}

COMPLETION_SHELLS = ("bash", "zsh", "fish")


def build_parser() -> argparse.ArgumentParser:
    """Every command and option; also the source of the man page and the shell completions."""
    parser = argparse.ArgumentParser(
        prog="trakt-scrobbled",
        description="Scrobbles what mpv, Kodi and Plex play to Trakt.tv, durably.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def cmd(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=_EXAMPLES.get(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_common(p)
        return p

    cmd("run", "run the daemon in the foreground (what systemd starts)")
    account_help = "the household account ([accounts.NAME] in the config)"
    cmd("login", "log in to Trakt with a device code").add_argument(
        "--account", metavar="NAME", help=account_help
    )
    cmd("logout", "revoke the Trakt login and delete the stored token").add_argument(
        "--account", metavar="NAME", help=account_help
    )
    p = cmd("status", "what the running daemon is doing")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--account", metavar="NAME", help="only this account (" + account_help + ")")
    cmd("reload", "make the running daemon read its config file again")

    p = cmd("queue", "the outbox: queued and failed scrobbles")
    p.add_argument("--json", action="store_true", help="one JSON object per row")
    p.add_argument("--account", metavar="NAME", help="only this account's rows")
    qsub = p.add_subparsers(dest="queue_action", metavar="ACTION")
    r = qsub.add_parser("retry", help="queue failed rows again (the daemon sends them at once)")
    _add_common(r)
    target = r.add_mutually_exclusive_group(required=True)
    target.add_argument("id", nargs="?", type=_row_id, help="row id")
    target.add_argument("--all", action="store_true", help="every failed row")
    d = qsub.add_parser("drop", help="delete a row")
    _add_common(d)
    d.add_argument("id", type=_row_id, help="row id")

    p = cmd("identify", "what files would be scrobbled as")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="one JSON object per path, one a line")
    p.add_argument("--offline", action="store_true", help="parse names only; ask Trakt nothing")

    p = cmd("config", "configuration commands")
    csub = p.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    c = csub.add_parser("check", help="validate the config file; list every problem")
    _add_common(c)
    c = csub.add_parser("init", help="write a commented starter config file (mode 0600)")
    _add_common(c)
    c.add_argument("--force", action="store_true", help="replace an existing file")
    c = csub.add_parser(
        "accounts", help="the household's account names, one a line (what --account takes)"
    )
    _add_common(c)

    cmd("doctor", "check config, login, Trakt, players and the service").add_argument(
        "--account", metavar="NAME", help="check only this household account's login"
    )

    p = cmd("plex", "Plex commands")
    psub = p.add_subparsers(dest="plex_action", metavar="ACTION", required=True)
    pl = psub.add_parser(
        "login", help="sign in to Plex with a PIN and pick the server live mode follows"
    )
    _add_common(pl)
    pl.add_argument("--server", metavar="NAME", help="the server to follow, by its name")

    p = cmd("service", "the systemd user service")
    ssub = p.add_subparsers(dest="service_action", metavar="ACTION", required=True)
    i = ssub.add_parser("install", help="write the user unit for this installation")
    _add_common(i)

    p = cmd("completion", "print a shell completion script")
    p.add_argument("shell", choices=COMPLETION_SHELLS, help="bash, zsh or fish")
    return parser


def _row_id(text: str) -> int:
    """A queue row id: a positive integer SQLite can hold (a bigger one is no row of ours)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a row id: {text[:30]!r}") from None
    if not 0 < value < 2**63:
        raise argparse.ArgumentTypeError(f"no such row: {text[:30]}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Everything we create (database, its -wal and -shm, tokens, lock, socket) is the user's
    # alone, with or without systemd's UMask=0077: it tells what they watch.
    os.umask(0o077)
    logs.setup(os.environ, verbose=getattr(args, "verbose", False))
    handlers: dict[str, Callable[[argparse.Namespace, Mapping[str, str]], int]] = {
        "run": cmd_run,
        "login": cmd_login,
        "logout": cmd_logout,
        "status": cmd_status,
        "queue": cmd_queue,
        "reload": cmd_reload,
        "identify": cmd_identify,
        "config": cmd_config,
        "doctor": cmd_doctor,
        "plex": cmd_plex,
        "service": cmd_service,
        "completion": cmd_completion,
    }
    if args.command is None:
        return _bare(os.environ, getattr(args, "config", None))
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


def _bare(env: Mapping[str, str], override: Path | None) -> int:
    """A bare `trakt-scrobbled`: a short usage, and the one next step for this machine."""
    paths = resolve_paths(env, override)
    print("usage: trakt-scrobbled COMMAND [--config PATH] [-v]   (--help lists the commands)")
    print(f"next: {next_step(paths)}")
    return EXIT_USER_ERROR


def next_step(paths: Paths) -> str:
    """What a person should do next, from what exists on disk."""
    if not paths.config_file.exists():
        return (
            f"no config file yet ({paths.config_file}): write a commented one with "
            "`trakt-scrobbled config init`"
        )
    if not paths.token_file.exists():
        return "log in to Trakt with `trakt-scrobbled login`"
    return "`trakt-scrobbled status` shows what the daemon does; `trakt-scrobbled doctor` checks"


def _load(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[Config, Paths]:
    override: Path | None = getattr(args, "config", None)
    paths = resolve_paths(env, override)
    try:
        config = load_config(paths.config_file, env, explicit=override is not None)
    except ConfigError as err:
        raise UserError(f"the config has problems:\n{err}") from err
    return config, paths


def cmd_run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from trakt_scrobbled.signals import EarlySignals

    early = EarlySignals().install()  # before the slow imports below
    from trakt_scrobbled import app
    from trakt_scrobbled.lock import AlreadyRunning
    from trakt_scrobbled.store import StoreError

    config, paths = _load(args, env)
    if not getattr(args, "verbose", False):
        logs.set_level(config.logging.level.numeric)
    try:
        asyncio.run(app.run(config, paths, env, early=early))
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
            "(or TRAKT_CLIENT_ID / TRAKT_CLIENT_SECRET) from your own app at "
            "https://trakt.tv/oauth/applications (creating one needs Trakt VIP), or install a "
            "build of trakt-scrobbled that bundles an app (see the README)"
        )


def _token_file(config: Config, paths: Paths, args: argparse.Namespace) -> Path:
    """The login `--account NAME` names (a configured account), else the single account's."""
    account = getattr(args, "account", None)
    if not account:
        return paths.token_file
    names = [a.name for a in config.accounts]
    if account not in names:
        known = ", ".join(names) if names else "none: add [accounts.NAME] to the config"
        raise UserError(f"no account {account!r} in the config (accounts: {known})")
    return paths.account_token_file(account)


def cmd_login(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    config, paths = _load(args, env)
    _need_client(config)
    token_file = _token_file(config, paths, args)
    try:
        return asyncio.run(_login(config, paths, token_file))
    except KeyboardInterrupt:
        print("\nlogin cancelled", file=sys.stderr)
        return 130


async def _login(config: Config, paths: Paths, token_file: Path) -> int:
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
        TokenStore(token_file).save(token)
    except OSError as err:
        raise UserError(
            f"logged in, but the token could not be saved to {token_file} "
            f"({err.strerror}): fix that and run the login again"
        ) from err
    print(f"Logged in. The token is stored in {token_file}.")
    return EXIT_OK


def cmd_plex(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """`plex login`: Plex's PIN flow; the token goes to the state folder, never to the screen."""
    from trakt_scrobbled.clock import SystemClock
    from trakt_scrobbled.config import PlexMode
    from trakt_scrobbled.plextv import PlexLoginFailed, PlexLoginStore, log_in

    config, paths = _load(args, env)
    store = PlexLoginStore(paths.plex_login_file)
    try:
        ensure_state_dir(paths)
        login = asyncio.run(
            log_in(
                config.plex,
                store,
                SystemClock(),
                lambda text: print(text, flush=True),
                server_name=args.server,
            )
        )
    except PlexLoginFailed as err:
        raise UserError(f"plex login: {err}") from err
    except OSError as err:
        raise UserError(f"plex login: cannot use {paths.state_dir} ({err.strerror})") from err
    except KeyboardInterrupt:
        print("\nlogin cancelled", file=sys.stderr)
        return 130
    who = f" as {login.account}" if login.account else ""
    server = f"{login.server_name} at {login.url}" if login.server_name else login.url
    print(f"Logged in to Plex{who}. Server: {server}. Stored in {store.path}.")
    if not (config.plex.enabled and config.plex.mode is PlexMode.LIVE):
        print('To follow it, set [plex] enabled = true and mode = "live" in the config.')
    else:
        print("A running daemon picks it up within a minute.")
    return EXIT_OK


def _qr_code(url: str) -> str:
    """`url` as a QR code in block characters, or in coloured spaces where the output's encoding
    lacks them (a non-UTF-8 locale would raise mid-code): either way a phone can scan it, on a
    light terminal as on a dark one (term.qr_lines)."""
    from trakt_scrobbled.term import qr_lines

    try:
        "█▀▄".encode(sys.stdout.encoding or "utf-8")
        unicode = True
    except (UnicodeEncodeError, LookupError):
        unicode = False
    return "".join(line + "\n" for line in qr_lines(url, unicode=unicode))


def cmd_logout(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    config, paths = _load(args, env)
    token_file = _token_file(config, paths, args)
    return asyncio.run(_logout(config, paths, env, token_file, getattr(args, "account", None)))


async def _logout(
    config: Config,
    paths: Paths,
    env: Mapping[str, str],
    token_file: Path,
    account: str | None = None,
) -> int:
    from trakt_scrobbled.clock import SystemClock
    from trakt_scrobbled.trakt.auth import TokenStore
    from trakt_scrobbled.trakt.client import TraktClient
    from trakt_scrobbled.trakt.errors import TraktError
    from trakt_scrobbled.trakt.ratelimit import PostRateLimiter

    store = TokenStore(token_file)
    token = store.load()
    if token is None:
        store.delete()
        _tell_daemon_logged_out(paths, env, account)
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
    _tell_daemon_logged_out(paths, env, account)
    if revoked:
        print("Logged out: the token was revoked at Trakt and deleted here.")
        return EXIT_OK
    print(
        "The token was deleted here but not revoked at Trakt; "
        "remove the app at https://trakt.tv/oauth/authorized_applications",
        file=sys.stderr,
    )
    return EXIT_USER_ERROR


def _tell_daemon_logged_out(
    paths: Paths, env: Mapping[str, str], account: str | None = None
) -> None:
    """A running daemon stops using the token at once (and shows how to log in again)."""
    from trakt_scrobbled.control import ControlError, NotRunning, control_path, request

    try:
        request(control_path(env, paths), "logout", {"account": account} if account else None)
    except NotRunning:
        return
    except ControlError as err:
        print(f"could not tell the running daemon: {err}", file=sys.stderr)
        return
    print(
        "The running daemon stopped using the login; to log in again enter the code that "
        "`trakt-scrobbled status` shows, or run `trakt-scrobbled login`."
    )


def cmd_config(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if args.config_action == "init":
        return _config_init(args, env)
    config, paths = _load(args, env)
    if args.config_action == "accounts":
        for account in config.accounts:
            print(account.name)
        return EXIT_OK
    where = paths.config_file if paths.config_file.exists() else "defaults (no config file)"
    print(f"config OK: {where}")
    if not config.trakt.client_id:
        print("note: no Trakt client id yet: set [trakt] client_id (or TRAKT_CLIENT_ID)")
    return EXIT_OK


def _config_init(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Write the commented example config (package data) where the daemon reads it, 0600."""
    from importlib import resources

    override: Path | None = getattr(args, "config", None)
    target = resolve_paths(env, override).config_file
    if os.path.lexists(target) and not args.force:
        raise UserError(f"{target} exists; keep it, or replace it with `config init --force`")
    text = (resources.files("trakt_scrobbled") / "data" / "config.example.toml").read_text(
        encoding="utf-8"
    )
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, target)  # a link in its place is replaced, never followed
    except OSError as err:
        raise UserError(f"cannot write {target}: {err.strerror}") from err
    print(f"wrote {target}")
    print("next: enable your players in it (mpv sockets, Kodi, Plex), then run")
    print("  trakt-scrobbled login && trakt-scrobbled service install")
    return EXIT_OK


def cmd_completion(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Generated from the same parser as --help and the man page (shtab)."""
    import shtab

    parser = build_parser()
    # `--account` completes the names of the config's [accounts.NAME] tables.
    names = shtab.cmd("trakt-scrobbled config accounts 2>/dev/null")
    for action in _actions(parser):
        if "--account" in action.option_strings:
            action.complete = names  # type: ignore[attr-defined]
    print(shtab.complete(parser, shell=args.shell), end="")
    return EXIT_OK


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Every option of `parser` and of its subcommands, all the way down."""
    out: list[argparse.Action] = []
    for action in parser._actions:
        out.append(action)
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                out.extend(_actions(sub))
    return out


def _paths_and_problems(
    args: argparse.Namespace, env: Mapping[str, str]
) -> tuple[Paths, list[str]]:
    """The paths, and the config file's problems if it has any: the commands that talk to the
    daemon work whatever state the file is in (the daemon runs on with its previous config)."""
    override: Path | None = getattr(args, "config", None)
    paths = resolve_paths(env, override)
    try:
        load_config(paths.config_file, env, explicit=override is not None)
    except ConfigError as err:
        return paths, [line for line in str(err).splitlines() if line.strip()]
    return paths, []


def _warn_problems(paths: Paths, problems: Sequence[str], *, running: bool) -> None:
    if not problems:
        return
    then = (
        "the daemon runs on with its previous config"
        if running
        else "`trakt-scrobbled run` will refuse to start until they are fixed"
    )
    print(f"{paths.config_file} has problems; {then}:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def cmd_status(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from trakt_scrobbled import status_view
    from trakt_scrobbled.control import ControlError, NotRunning, control_path
    from trakt_scrobbled.term import Paint, wants_colour

    paths, problems = _paths_and_problems(args, env)
    try:
        doc = status_view.fetch_status(control_path(env, paths))
    except NotRunning as err:
        print(f"{err}: {status_view.START_HINT}", file=sys.stderr)
        _warn_problems(paths, problems, running=False)
        return status_view.EXIT_NOT_RUNNING
    except ControlError as err:
        raise UserError(str(err)) from err
    account = getattr(args, "account", None)
    if account:
        accounts = doc.get("accounts")
        mine = (
            [a for a in accounts if a.get("name") == account] if isinstance(accounts, list) else []
        )
        if not mine:
            raise UserError(f"the running daemon has no account {account!r}")
        doc["accounts"] = mine
    config = doc.get("config")
    if problems and not (isinstance(config, dict) and config.get("problems")):
        # The daemon has not read the file since it broke: say so all the same.
        doc["config"] = {"file": str(paths.config_file), "problems": problems}
    if args.json:
        print(status_view.dumps(doc))
    else:
        paint = Paint(wants_colour(sys.stdout, env))
        print(status_view.render_status(doc, now=time.time(), paint=paint), end="")
    return EXIT_OK


def cmd_reload(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from trakt_scrobbled import status_view
    from trakt_scrobbled.control import ControlError, NotRunning, control_path, request

    paths, _ = _paths_and_problems(args, env)
    try:
        answer = request(control_path(env, paths), "reload")
    except NotRunning as err:
        print(f"{err}: {status_view.START_HINT}", file=sys.stderr)
        return status_view.EXIT_NOT_RUNNING
    except ControlError as err:
        raise UserError(str(err)) from err
    problems = answer.get("problems", []) if isinstance(answer, dict) else []
    if problems:
        _warn_problems(paths, [str(p) for p in problems], running=True)
        return EXIT_USER_ERROR
    print(f"reloaded {paths.config_file}")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from trakt_scrobbled import doctor
    from trakt_scrobbled.term import Paint, wants_colour

    override: Path | None = getattr(args, "config", None)
    paths = resolve_paths(env, override)

    async def run() -> int:
        failed = 0
        paint = Paint(wants_colour(sys.stdout, env))
        async for check in doctor.diagnose(
            paths,
            env,
            explicit_config=override is not None,
            account=getattr(args, "account", None) or None,
        ):
            failed += check.failed
            print(check.render(paint), flush=True)
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
    """Through the daemon when it runs (a retried row goes out at once), else on the database."""
    from trakt_scrobbled.control import CommandFailed, ControlError, NotRunning, control_path
    from trakt_scrobbled.control import request as ask

    paths, problems = _paths_and_problems(args, env)
    action = getattr(args, "queue_action", None)
    command = action or "queue"
    params: dict[str, object] = {}
    if getattr(args, "account", None):
        params["account"] = args.account
    if action == "retry":
        params["id"] = None if args.all else args.id
    elif action == "drop":
        params["id"] = args.id
    try:
        result = ask(control_path(env, paths), command, params)
        running = True
    except NotRunning:
        row_id = params.get("id")
        result = _queue_offline(
            paths,
            command,
            row_id if isinstance(row_id, int) else None,
            getattr(args, "account", None) or None,
        )
        running = False
    except CommandFailed as err:
        raise UserError(str(err)) from err
    except ControlError as err:
        raise UserError(str(err)) from err
    _warn_problems(paths, problems, running=running)
    if command == "retry":
        n = result if isinstance(result, int) else 0
        if n == 0:
            raise UserError("no failed row to retry" if args.all else f"no failed row {args.id}")
        later = "the daemon is sending them now" if running else "they go out when it starts"
        print(f"{n} row(s) queued again; {later}")
        return EXIT_OK
    if command == "drop":
        if not result:
            raise UserError(f"no row {args.id}")
        print(f"row {args.id} dropped")
        return EXIT_OK
    rows = [r for r in result if isinstance(r, dict)] if isinstance(result, list) else []
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return EXIT_OK
    if not rows:
        print("the queue is empty")
        return EXIT_OK
    for row in rows:
        created = row.get("created_at")
        stamp = created if isinstance(created, int | float) else 0
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))
        what = "watched" if row.get("watched") else str(row.get("kind"))
        line = f"{row.get('id', '?'):>6}  {row.get('state', '?'):<7}  {when}  {what:<8} "
        line += str(row.get("item") or "?")
        if row.get("error"):
            line += f"  ({row['error']})"
        print(line)
    return EXIT_OK


def _queue_offline(
    paths: Paths, command: str, row_id: int | None, account: str | None = None
) -> object:
    """The same commands on the database, when no daemon runs: every account's rows, or
    `account`'s only."""
    from trakt_scrobbled.clock import SystemClock
    from trakt_scrobbled.outbox import Outbox, accounts_with_rows
    from trakt_scrobbled.status_view import queue_row_json
    from trakt_scrobbled.store import StoreError, open_db

    if command == "queue" and not paths.db_file.exists():
        return []
    try:
        conn = open_db(paths.db_file)
    except StoreError as err:
        raise UserError(str(err)) from err
    try:
        names = [account] if account is not None else sorted({"", *accounts_with_rows(conn)})
        outboxes = [Outbox(conn, SystemClock(), account=name) for name in names]
        if command == "retry":
            return sum(outbox.retry(row_id) for outbox in outboxes)
        if command == "drop":
            return row_id is not None and any(outbox.drop(row_id) for outbox in outboxes)
        rows = sorted((row for outbox in outboxes for row in outbox.rows()), key=lambda r: r.id)
        return [queue_row_json(row) for row in rows]
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
