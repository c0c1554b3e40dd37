"""`python -m lavis_syncmask.synthetic`: forwards to :mod:`lavis_syncmask.cli.synthetic`."""

from __future__ import annotations

from lavis_syncmask.cli.synthetic import main

if __name__ == "__main__":
    main()
