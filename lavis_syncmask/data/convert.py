"""`python -m lavis_syncmask.data.convert`: the catalogue converter's command, kept working; the
conversion itself is :mod:`lavis_syncmask.data.catalogue_h5`, its command line
:mod:`lavis_syncmask.cli.convert`. `PRODUCT_KEY_KEY` stays importable from here for
`search/source.py` (its home is `data/formats.py`)."""

from __future__ import annotations

import sys

from lavis_syncmask.cli.convert import PRODUCT_KEY_KEY, main

__all__ = ["PRODUCT_KEY_KEY", "main"]

if __name__ == "__main__":
    sys.exit(main())
