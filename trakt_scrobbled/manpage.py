"""The man page, generated from the same argparse definitions as `--help` and the completions.

`python -m trakt_scrobbled.manpage > trakt_scrobbled/data/trakt-scrobbled.1` (`make man`)
refreshes the shipped page; a test checks that it is up to date.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any

from trakt_scrobbled import __version__


def _esc(text: str) -> str:
    """Roff-safe text: backslashes and hyphens escaped, no line starting with a control dot."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(
        ("\\&" + line) if line.startswith((".", "'")) else line for line in text.splitlines()
    )


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[argparse._SubParsersAction[Any]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield action


_COMMON = frozenset({"help", "config", "verbose", "version"})
"""Options every command takes: described once, under OPTIONS."""


def _options(parser: argparse.ArgumentParser, skip: frozenset[str] = frozenset()) -> list[str]:
    lines: list[str] = []
    for action in parser._actions:
        if (
            action.help in (None, argparse.SUPPRESS)
            or isinstance(action, argparse._SubParsersAction)
            or action.dest in skip
        ):
            continue
        if action.option_strings:
            names = ", ".join(f"\\fB{_esc(o)}\\fR" for o in action.option_strings)
            if action.nargs != 0:
                metavar = action.metavar if isinstance(action.metavar, str) else None
                names += f" \\fI{_esc(metavar or action.dest.upper())}\\fR"
        else:
            names = f"\\fI{_esc(str(action.metavar or action.dest).upper())}\\fR"
        lines += [".TP", names, _esc(str(action.help))]
    return lines


def _commands(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    lines: list[str] = []
    for sub in _subparsers(parser):
        helps = {a.dest: a.help for a in sub._choices_actions}
        for name, child in sub.choices.items():
            full = f"{prefix} {name}".strip()
            lines += [".SS", f"\\fB{_esc(full)}\\fR", _esc(str(helps.get(name) or ""))]
            options = _options(child, _COMMON)
            if options:
                lines += [".RS", *options, ".RE"]
            if child.epilog:
                lines += [".PP", ".nf", _esc(child.epilog), ".fi"]
            lines += _commands(child, full)
    return lines


def render(parser: argparse.ArgumentParser) -> str:
    """The page in roff (man(7)), with no date so that it is reproducible."""
    name = parser.prog
    lines = [
        f'.TH {name.upper()} 1 "" "{name} {__version__}" "User Commands"',
        ".SH NAME",
        f"{_esc(name)} \\- {_esc(parser.description or '')}",
        ".SH SYNOPSIS",
        f"\\fB{_esc(name)}\\fR \\fICOMMAND\\fR [\\fB\\-\\-config\\fR \\fIPATH\\fR] [\\fB\\-v\\fR]",
        ".SH OPTIONS",
        *_options(parser, frozenset({"help"})),
        ".SH COMMANDS",
        *_commands(parser, ""),
    ]
    if parser.epilog:
        lines += [".SH EXAMPLES", ".nf", _esc(parser.epilog), ".fi"]
    lines += [
        ".SH FILES",
        ".TP",
        "\\fI$XDG_CONFIG_HOME/trakt\\-scrobbled/config.toml\\fR",
        "the config file (\\fBtrakt\\-scrobbled config init\\fR writes a commented one)",
        ".TP",
        "\\fI$XDG_STATE_HOME/trakt\\-scrobbled/\\fR",
        "the outbox database and the Trakt login, private to the user",
        ".TP",
        "\\fI$XDG_RUNTIME_DIR/trakt\\-scrobbled/control.sock\\fR",
        "the control socket the commands use to reach the running daemon",
        ".SH SEE ALSO",
        "\\fBsystemctl\\fR(1), \\fBjournalctl\\fR(1), \\fBmpv\\fR(1)",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    from trakt_scrobbled.cli import build_parser

    sys.stdout.write(render(build_parser()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
