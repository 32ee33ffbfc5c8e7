"""`python -m trakt_scrobbled` and the `trakt-scrobbled` command.

For `run`, SIGHUP is caught before anything else is imported: a reload requested while the
daemon starts (`systemctl reload` racing the start) must not kill it.
"""

import sys

from trakt_scrobbled.signals import EarlySignals


def main() -> int:
    if "run" in sys.argv[1:]:
        EarlySignals().install()
    from trakt_scrobbled.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
