"""Config checks shared by the run settings, the batch sampler's knobs, the dataset builders
and the top level of a config: unknown keys are an error that lists the valid ones with a "did
you mean" (style.md), and a value of the wrong type names its key."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal

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


def _describe(kind: str, key: str, value: Any) -> ValueError:
    return ValueError(f"{key} must be {kind}, got {value!r}")


def coerce(key: str, value: Any, hint: Any) -> Any:
    """`value` checked against the type `hint` (the subset RunSettings uses); YAML's `1e-4`
    (a string for YAML 1.1) is accepted as a float. Raises ValueError naming `key`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for option in inner:  # the first type that takes the value
            try:
                return coerce(key, value, option)
            except ValueError as error:
                errors.append(error)
        raise errors[0] if len(errors) == 1 else ValueError(f"{key}: bad value {value!r}")
    if origin is Literal:
        # Strict on type: `0 == False`, yet amp: 0 is not amp: false.
        if any(type(value) is type(a) and value == a for a in args):
            return value
        if value is True and False in args:  # e.g. amp: true, mapped by the caller
            return value
        raise ValueError(f"{key} must be one of {list(args)}, got {value!r}")
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _describe("true or false", key, value)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _describe("an int", key, value)
    if hint is float:
        return _float(key, value)
    if hint is str:
        if isinstance(value, str):
            return value
        raise _describe("a string", key, value)
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise _describe("a list", key, value)
        return tuple(coerce(f"{key}[{i}]", item, args[0]) for i, item in enumerate(value))
    if origin in (Mapping, dict) or hint in (Mapping, dict):
        if not isinstance(value, dict):
            raise _describe("a mapping", key, value)
        return value
    raise TypeError(f"{key}: no check for type {hint!r}")  # a RunSettings field without support


def _float(key: str, value: Any) -> float:
    if isinstance(value, bool):
        raise _describe("a number", key, value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise _describe("a number", key, value)
