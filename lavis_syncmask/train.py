"""`python -m lavis_syncmask.train`: forwards to :mod:`lavis_syncmask.cli.train`."""

from __future__ import annotations

import sys

from lavis_syncmask.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
