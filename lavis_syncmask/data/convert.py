"""`python -m lavis_syncmask.data.convert`: the catalogue converter's command, kept working; the
conversion itself is :mod:`lavis_syncmask.data.catalogue_h5`, its command line
:mod:`lavis_syncmask.cli.convert`."""

from __future__ import annotations

import sys

from lavis_syncmask.cli.convert import main

if __name__ == "__main__":
    sys.exit(main())
