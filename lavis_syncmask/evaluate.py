"""`python -m lavis_syncmask.evaluate`: forwards to :mod:`lavis_syncmask.cli.evaluate`."""

from __future__ import annotations

import sys

from lavis_syncmask.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
