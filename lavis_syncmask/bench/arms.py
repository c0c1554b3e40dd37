"""The benchmark's arms: one yaml each, the shipped recipe with only the arm's keys changed.

Arm (a) is `projects/syncmask/bench/a_syncmask.yaml`, a link to the shipped tiny recipe
(`lavis_syncmask/configs/recipes/pretrain_tiny.yaml`, what `make demo` trains); `recipe_drift`
lists every key in which another arm's yaml differs from it, so a test can hold each arm to
the keys that define it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lavis_syncmask.common.paths import config_path

#: Where the arm yamls live in a source checkout.
BENCH_DIR = Path(__file__).resolve().parents[2] / "projects" / "syncmask" / "bench"
#: Keys a run may set besides its arm's (the benchmark sets them per run).
PER_RUN_KEYS = frozenset({"run.output_dir"})
#: ITC / queue settings that LAVIS's ALBEF / BLIP take from the recipe (they share them).
SHARED_OBJECTIVE_KEYS = ("learn_temp", "temp", "queue_size", "momentum", "alpha")


@dataclass(frozen=True)
class Arm:
    label: str
    defining_keys: frozenset[str]  # dotted keys; "model" alone: the whole model section
    baseline: bool = False  # LAVIS's own model (paired as the reference)
    #: Holm family of (a) against this arm: "headline" (the comparisons the benchmark exists
    #: for, fixed before any test run) or "ablation" (parts of the method, a family of its own)
    family: str = "headline"


ARMS: dict[str, Arm] = {
    "a_syncmask": Arm("(a) SyncMask as shipped", frozenset()),
    "b_random_masks": Arm("(b) random masks", frozenset({"model.strategy"})),
    "c_random_batches": Arm(
        "(c) random batches", frozenset({"run.batch_sampler"}), family="ablation"
    ),
    "d_no_mim": Arm("(d) no MIM", frozenset({"model.use_mim"}), family="ablation"),
    "e_albef": Arm("(e) LAVIS AlbefPretrain", frozenset({"model", "run.batch_sampler"}), True),
    "f_blip": Arm("(f) LAVIS BlipPretrain", frozenset({"model", "run.batch_sampler"}), True),
    "g_syncmask_no_fn_handling": Arm(
        "(g) SyncMask, same-product pairs as LAVIS",
        frozenset({"model.false_negatives"}),
        family="ablation",
    ),
}
#: The arm every other one is paired against first (LAVIS's own ALBEF).
REFERENCE = "e_albef"


def recipe_path() -> Path:
    """The shipped tiny recipe: arm (a)."""
    return Path(config_path("recipes", "pretrain_tiny.yaml"))


def arm_path(arm: str, bench_dir: Path = BENCH_DIR) -> Path:
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; choose among {', '.join(ARMS)}")
    path = bench_dir / f"{arm}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"arm {arm}: no recipe at {path}")
    return path


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """`{"run.sampler.group_size": 4, ...}` of a nested mapping."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def load_flat(path: Path) -> dict[str, Any]:
    return flatten(OmegaConf.to_container(OmegaConf.load(path), resolve=True))


def recipe_drift(arm: str, bench_dir: Path = BENCH_DIR) -> set[str]:
    """Keys in which the arm's yaml differs from the shipped recipe that its definition does
    not allow (empty when the arm is the recipe plus its own keys)."""
    base, mine = load_flat(recipe_path()), load_flat(arm_path(arm, bench_dir))
    differing = {k for k in base.keys() | mine.keys() if base.get(k, ...) != mine.get(k, ...)}
    allowed = ARMS[arm].defining_keys | PER_RUN_KEYS
    return {k for k in differing if k not in allowed and k.split(".", 1)[0] not in allowed}


def effective_model(path: Path) -> dict[str, Any]:
    """A syncmask arm's model keys over its preset's defaults (a baseline's as written)."""
    model = OmegaConf.to_container(OmegaConf.load(path).model, resolve=True)
    if model.get("arch") != "syncmask_fashion":
        return model
    preset = OmegaConf.load(config_path("models", f"syncmask_fashion_{model['model_type']}.yaml"))
    return {**OmegaConf.to_container(preset.model, resolve=True), **model}
