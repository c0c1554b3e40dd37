"""Unknown config keys are an error that lists the valid ones, with a "did you mean" (style.md):
one helper for the run settings, the dataset builders and the top level of a config."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

#: Top-level sections of a run config (LAVIS's `Config` keeps only these three).
SECTIONS: tuple[str, ...] = ("model", "datasets", "run")
#: What LAVIS's `Config` adds to them: the model default yaml's `preprocess` block.
MERGED_SECTIONS: tuple[str, ...] = (*SECTIONS, "preprocess")


def check_sections(
    config: Mapping[str, Any], where: str = "the config", valid: Iterable[str] = SECTIONS
) -> None:
    """Fail on a top-level section not in `valid` (e.g. a `runn:` typo), and on a missing
    run / model / datasets."""
    reject_unknown("", dict(config), valid, where=where)
    missing = [name for name in SECTIONS if config.get(name) is None]
    if missing:
        raise ValueError(f"{where} has no {', '.join(f'`{m}:`' for m in missing)} section")


def reject_unknown(
    prefix: str, values: Iterable[str], valid: Iterable[str], where: str = ""
) -> None:
    """ValueError listing the keys of `values` not in `valid`, with the valid ones and the
    closest match of each ("did you mean"). `prefix` is the config path, e.g. `run`."""
    valid = sorted(valid)
    unknown = sorted(set(values) - set(valid))
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, valid, n=1)
        hints.append(
            f"{prefix + '.' if prefix else ''}{key}"
            + (f" (did you mean {close[0]!r}?)" if close else "")
        )
    kind = f"{prefix}.* keys" if prefix else "top-level config sections"
    place = f" in {where}" if where else ""
    raise ValueError(f"unknown {kind}{place}: {', '.join(hints)}; valid: {valid}")
