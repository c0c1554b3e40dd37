"""Typed settings of the SyncMask masking step (method.md section 3, [ours] steps 3-6).

Every choice the paper leaves open is a field here, so a user who knows the paper's exact
numbers can set them from the model yaml.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from lavis_syncmask.masking.strategies import DEFAULT_STRATEGY, STRATEGIES, MaskStrategy

_WORD_SCORES = ("max", "entropy")
_WARMUP_SCHEDULES = ("step", "linear")
#: The ratios and why each range: every sample masks at least one word (k_w >= 1), so an MLM
#: ratio of 0 could not mean "mask nothing"; a loss is turned off by its weight instead. A
#: sync_ratio of 0 is meaningful: every masked unit drawn uniformly (random masking).
_RATIOS = {
    "mlm_ratio": "to train without MLM set model.mlm_weight: 0",
    "mim_ratio": "to train without MIM set model.use_mim: false",
    "sync_ratio": "share of each budget chosen by attention; 0: random masks",
}


@dataclass(frozen=True)
class MaskingConfig:
    """How MLM words and MIM patches are chosen.

    Warm-up (``sync_warmup_schedule``): with ``"step"`` (default) masks are purely random for
    ``step < sync_warmup_steps`` and use the full ``sync_ratio`` from then on; with
    ``"linear"`` the attention-chosen share ramps as ``sync_ratio * min(1, step /
    sync_warmup_steps)``, so only step 0 is purely random.

    >>> MaskingConfig.from_dict({"mlm_ratio": 0.2, "mlm_probs": [0.8, 0.1, 0.1]}).mlm_ratio
    0.2
    """

    strategy: MaskStrategy = DEFAULT_STRATEGY  # random: same path, noise scores
    mlm_ratio: float = 0.15  # of candidate words: k_w = max(1, round(mlm_ratio * n)); > 0
    mim_ratio: float = 0.25  # of patches: k_p = round(mim_ratio * P); > 0
    sync_word_score: Literal["max", "entropy"] = "max"  # max_p A or negative entropy of A
    sync_temperature: float = 0.1  # Gumbel scale in units of the sample's score std; 0: top-k
    sync_ratio: float = 1.0  # share of each budget chosen by attention; rest uniform
    sync_warmup_steps: int = 0  # steps of random (or ramping) masks; see class docstring
    sync_warmup_schedule: Literal["step", "linear"] = "step"
    sync_word_filter: bool = True  # punctuation and stop-words are never candidates
    mlm_probs: tuple[float, float, float] = (0.8, 0.1, 0.1)  # [MASK] / random token / keep

    def __post_init__(self) -> None:
        _check_choice("strategy", self.strategy, STRATEGIES)
        _check_choice("sync_word_score", self.sync_word_score, _WORD_SCORES)
        _check_choice("sync_warmup_schedule", self.sync_warmup_schedule, _WARMUP_SCHEDULES)
        for name, why in _RATIOS.items():
            value = getattr(self, name)
            low_open = name != "sync_ratio"
            if not (_is_real(value) and (value > 0 if low_open else value >= 0) and value <= 1):
                raise ValueError(
                    f"model.{name}={value!r} is out of range: must be a number in "
                    f"{'(' if low_open else '['}0, 1] ({why})"
                )
        t = self.sync_temperature
        if not _is_real(t) or not math.isfinite(t) or t < 0:
            raise ValueError(f"model.sync_temperature must be finite and >= 0, got {t!r}")
        steps = self.sync_warmup_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"model.sync_warmup_steps must be an int >= 0, got {steps!r}")
        if not isinstance(self.sync_word_filter, bool):
            raise ValueError(
                f"model.sync_word_filter must be true or false, got {self.sync_word_filter!r}"
            )
        object.__setattr__(self, "mlm_probs", check_mlm_probs(self.mlm_probs))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MaskingConfig:
        """Build from a (yaml) mapping; unknown keys raise a ValueError listing the valid ones."""
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(valid))
        if unknown:
            raise ValueError(f"unknown masking config keys {unknown}; valid keys: {valid}")
        return cls(**dict(d))

    def effective_sync_ratio(self, step: int) -> float:
        """Share of each budget chosen by attention at training ``step`` (0 = random masks)."""
        if self.strategy == "random":
            return 0.0
        warmup = self.sync_warmup_steps
        if warmup == 0 or step >= warmup:
            return self.sync_ratio
        if self.sync_warmup_schedule == "step":
            return 0.0
        return self.sync_ratio * max(step, 0) / warmup


def check_mlm_probs(probs: Any) -> tuple[float, float, float]:
    """Validate BERT's ([MASK], random, keep) probabilities and return them as a float tuple."""
    try:
        values = tuple(float(p) for p in probs)
    except (TypeError, ValueError) as err:
        raise ValueError(f"mlm_probs must be three numbers, got {probs!r}") from err
    if len(values) != 3 or any(not math.isfinite(p) or p < 0 for p in values):
        raise ValueError(f"mlm_probs must be three non-negative numbers, got {probs!r}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"mlm_probs must sum to 1, got {probs!r} (sum {sum(values)})")
    return values  # type: ignore[return-value]


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"model.{name} must be one of {list(choices)}, got {value!r}")


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
