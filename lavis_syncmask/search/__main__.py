"""`python -m lavis_syncmask.search`: see lavis_syncmask/search/cli.py."""

import sys

from lavis_syncmask.search.cli import main

sys.exit(main())
