import sys

from trakt_scrobbled.cli import main

sys.exit(main())
