"""The batch sampler's modes and settings, defined once for the sampler, its packer and the
runner that reads `run.batch_sampler` / `run.sampler` (method.md section 4, [ours])."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from lavis_syncmask.common.keys import coerce

__all__ = [
    "RUNNER_SET",
    "SAMPLER_KNOBS",
    "SAMPLER_MODES",
    "SIM_UPPER",
    "SamplerMode",
    "SamplerSettings",
    "knob_types",
    "sampler_knobs",
]

#: `semi_hard` (the method), `grouped` (ablation: groups without the similarity band),
#: `random` (baseline).
SamplerMode = Literal["semi_hard", "grouped", "random"]
SAMPLER_MODES: tuple[str, ...] = get_args(SamplerMode)
#: Similarity at or above which two texts are near-duplicates: never in one batch, never an
#: ITM hard negative of each other (method.md section 4).
SIM_UPPER = 0.9
#: The documented `run.sampler` keys (a sampler class may accept more keyword arguments).
SAMPLER_KNOBS: tuple[str, ...] = (
    "group_size",
    "sim_lower",
    "sim_upper",
    "refresh_every",
    "random_epochs",
)
#: Constructor arguments the runner sets itself, never taken from `run.sampler`.
RUNNER_SET: frozenset[str] = frozenset({"mode", "seed", "num_replicas", "rank", "drop_last"})


@dataclass(frozen=True)
class SamplerSettings:
    """`run.batch_sampler` (None: plain shuffled loaders) and the `run.sampler` knobs."""

    mode: SamplerMode | None = None
    knobs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in SAMPLER_MODES:
            raise ValueError(
                f"run.batch_sampler={self.mode!r} is not valid; choose one of "
                f"{list(SAMPLER_MODES)} or null"
            )

    def checked(
        self, valid_knobs: Sequence[str] = SAMPLER_KNOBS, types: Mapping[str, Any] | None = None
    ) -> SamplerSettings:
        """Self, once every `run.sampler` key is one of `valid_knobs` and, where `types` has
        its annotation, a value of that type (else ValueError naming the key)."""
        unknown = sorted(set(self.knobs) - set(valid_knobs))
        if unknown:
            raise ValueError(f"unknown run.sampler keys {unknown}; valid keys: {list(valid_knobs)}")
        for name, value in self.knobs.items():
            if name in (types or {}):
                coerce(f"run.sampler.{name}", value, types[name])
        return self

    def checked_for(self, sampler_cls: type | None) -> SamplerSettings:
        """`checked` against the keyword arguments and annotations of the sampler class the
        runner builds (None: no batch sampler, so only the documented knobs)."""
        if sampler_cls is None:
            return self.checked()
        return self.checked(sampler_knobs(sampler_cls), knob_types(sampler_cls))


def sampler_knobs(sampler_cls: Callable[..., Any]) -> tuple[str, ...]:
    """The keyword-only constructor arguments of `sampler_cls` that `run.sampler` may set."""
    params = inspect.signature(sampler_cls).parameters.values()
    names = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    return tuple(name for name in names if name not in RUNNER_SET)


def knob_types(sampler_cls: type) -> dict[str, Any]:
    """The annotated types of `sampler_cls`'s constructor arguments (empty when it has none)."""
    hints = typing.get_type_hints(sampler_cls.__init__)
    return {name: hint for name, hint in hints.items() if name != "return"}
