"""`python -m lavis_syncmask.bench`: forwards to `lavis_syncmask.cli.bench`."""

import sys

from lavis_syncmask.cli.bench import main

if __name__ == "__main__":
    sys.exit(main())
