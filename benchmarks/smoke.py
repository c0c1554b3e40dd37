"""The `--smoke` switch that every benchmark script shares.

A smoke run takes seconds: the same code path on the smallest inputs the script accepts, so an
import or an interface change fails `tests/test_bench_smoke.py` instead of a user's command.
Its figures mean nothing. Scripts that measure memory in a fresh child process per method run
the child's function in-process under `--smoke` (each child would cost a full `import lavis`).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

SMOKE_HELP = "seconds-long run on the smallest inputs, for the tests (its figures mean nothing)"


def parse_with_smoke(
    parser: argparse.ArgumentParser,
    overrides: Mapping[str, Any],
    argv: Sequence[str] | None = None,
) -> argparse.Namespace:
    """Parse `argv` with a `--smoke` flag added; under it, `overrides` replace the parsed
    values (argparse dests, e.g. `query_rows`)."""
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args(argv)
    if args.smoke:
        for key, value in overrides.items():
            if not hasattr(args, key):
                raise KeyError(f"smoke override {key!r} is not an option of {parser.prog}")
            setattr(args, key, value)
    return args
