"""`python -m lavis_syncmask.data.synthetic`: the generator's old command, kept working; the
generator itself is :mod:`lavis_syncmask.synthetic`, its command line :mod:`lavis_syncmask.cli.synthetic`."""

from __future__ import annotations

import sys

from lavis_syncmask.cli.synthetic import main

if __name__ == "__main__":
    sys.exit(main())
