"""`python -m lavis_syncmask.search`: forwards to `lavis_syncmask.cli.search`."""

import sys

from lavis_syncmask.cli.search import main

sys.exit(main())
