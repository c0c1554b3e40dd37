"""`python -m lavis_syncmask.viz`: forwards to :mod:`lavis_syncmask.cli.viz` (mask pictures)."""

from __future__ import annotations

from lavis_syncmask.cli.viz import main

if __name__ == "__main__":
    main()
