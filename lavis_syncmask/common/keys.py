"""Config checks shared by the run settings, the model settings, the batch sampler's knobs,
the dataset builders and the top level of a config: unknown keys are an error that lists the
valid ones with a "did you mean" (style.md), and a value of the wrong type or out of its range
names its key, the value and what is allowed."""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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
    if not isinstance(config, Mapping):
        raise ValueError(f"the top level of {where} must be a mapping, got {kind_of(config)}")
    reject_unknown("", dict(config), valid, where=where)
    missing = [name for name in SECTIONS if config.get(name) is None]
    if missing:
        raise ValueError(f"{where} has no {', '.join(f'`{m}:`' for m in missing)} section")
    for name, section in config.items():
        if not isinstance(section, Mapping):  # `model: 5` would end in an AttributeError
            raise ValueError(f"`{name}:` in {where} must be a mapping, got {kind_of(section)}")


def kind_of(value: Any) -> str:
    """`a list`, `an int (5)`: what a yaml value is, for an error."""
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping)):
        return "a list"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name} ({value!r})"


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


@dataclass(frozen=True)
class Range:
    """The finite numbers a setting allows: `low` / `high` (None: unbounded), each included
    unless `low_open` / `high_open`; `why` says where the range comes from, for the error."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    why: str = ""

    def __contains__(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        low, high = self.low, self.high
        if low is not None and high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"in {left}{low:g}, {high:g}{right}"
        if low is not None:
            return f"{'>' if self.low_open else '>='} {low:g}"
        if high is not None:
            return f"{'<' if self.high_open else '<='} {high:g}"
        return "finite"


def check_range(key: str, value: float, allowed: Range) -> None:
    """ValueError naming `key`, `value` and the range when `value` is outside `allowed`."""
    if value not in allowed:
        why = f" ({allowed.why})" if allowed.why else ""
        raise ValueError(f"{key}={value!r} is out of range: must be {allowed}{why}")


def check_fields(obj: Any, prefix: str, ranges: Mapping[str, Range]) -> None:
    """Type-check every field of the frozen dataclass `obj` against its annotation (`coerce`;
    the coerced value replaces it, e.g. YAML's "1e-4" or a list for a tuple), then the range of
    each field named in `ranges`. Errors name the key as `prefix.field`."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        key = f"{prefix}.{f.name}" if prefix else f.name
        value = coerce(key, getattr(obj, f.name), hints[f.name])
        object.__setattr__(obj, f.name, value)
        if f.name in ranges and value is not None:
            check_range(key, value, ranges[f.name])
