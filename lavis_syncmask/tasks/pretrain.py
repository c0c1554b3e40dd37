"""The `syncmask_pretrain` task: one SyncMask pretraining step per batch (the model's teacher
produces the synchronized masks, method.md §3), logging every loss term and the mask
statistics (content-word share, attention mass covered, word / patch sync precision).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from lavis.common.registry import registry
from lavis.tasks.base_task import BaseTask

from lavis_syncmask.common.distributed import collective_device, is_dist
from lavis_syncmask.tasks.step_metrics import FeatureWatch, masked_word_precision

#: Loss terms recorded when the model's output has them (SyncMask: the first four; LAVIS's
#: ALBEF: ITC, ITM, MLM; LAVIS's BLIP: ITC, ITM, LM).
LOSS_TERMS = ("loss_itc", "loss_itm", "loss_mlm", "loss_mim", "loss_lm")


class RunningMeans:
    """Per-key running means of scalars; summed across ranks when asked for the result."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.count: dict[str, int] = defaultdict(int)

    def update(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            if value == value:  # NaN means "not measurable in this batch": skip it
                self.total[key] += float(value)
                self.count[key] += 1

    def means(self) -> dict[str, float]:
        keys = sorted(self.total)
        stacked = torch.tensor([[self.total[k], self.count[k]] for k in keys], dtype=torch.float64)
        if keys and is_dist():  # sums and counts, so ranks with fewer batches weigh less
            stacked = stacked.to(collective_device())
            torch.distributed.all_reduce(stacked)
        return {k: float(t / max(c, 1)) for k, (t, c) in zip(keys, stacked.cpu().tolist())}

    def reset(self) -> None:
        self.total.clear()
        self.count.clear()


@registry.register_task("syncmask_pretrain")
class SyncMaskPretrainTask(BaseTask):
    """LAVIS task: `train_step` runs the model and records its loss terms, mask statistics
    and ITC feature cosines; the runner logs their epoch means (`epoch_means`) with its own
    stats, and each step's values (`last_step_values`) with `run.log_every_step`. It also
    trains LAVIS's `albef_pretrain` / `blip_pretrain`, built offline by `baselines/`."""

    def __init__(self) -> None:
        super().__init__()
        self.meters = RunningMeans()
        self.features = FeatureWatch()
        self.last_values: dict[str, float] = {}

    def build_model(self, cfg: Any) -> Any:
        """LAVIS's ALBEF / BLIP pretraining classes offline (their `from_config` downloads
        BERT); every other arch as LAVIS builds it."""
        from lavis_syncmask.baselines import BASELINE_ARCHS, build_baseline
        from lavis_syncmask.models.config import model_arch, model_section

        if model_arch(cfg) in BASELINE_ARCHS:
            return build_baseline(model_section(cfg))
        return super().build_model(cfg)

    def train_step(self, model: Any, samples: dict[str, Any]) -> torch.Tensor:
        bare = model.module if hasattr(model, "module") else model
        self.features.attach(bare)
        self.features.start()
        output = model(samples)
        values = {k: float(getattr(output, k).detach()) for k in LOSS_TERMS
                  if getattr(output, k, None) is not None}  # fmt: skip
        values["loss"] = float(output.loss.detach())
        values.update(getattr(output, "mask_stats", None) or {})
        if "word_sync_precision" not in values and hasattr(bare, "last_mlm_mask"):
            values["word_sync_precision"] = masked_word_precision(bare, samples)
        values.update(self.features.cosines())
        self.last_values = {k: float(v) for k, v in values.items()}
        self.meters.update(values)
        return output.loss

    def last_step_values(self) -> dict[str, float]:
        """What the last `train_step` measured (the runner's `metrics.jsonl` line)."""
        return dict(self.last_values)

    def before_train_epoch(self, epoch: int) -> None:
        """Called by `runner_syncmask` at the start of each epoch: fresh epoch means."""
        self.meters.reset()

    def epoch_means(self) -> dict[str, float]:
        """Means of the loss terms and mask statistics since the epoch started."""
        return self.meters.means()

    def resume_state(self) -> dict[str, Any]:
        """This rank's running sums, saved in a mid-epoch checkpoint."""
        return {"total": dict(self.meters.total), "count": dict(self.meters.count)}

    def load_resume_state(self, state: dict[str, Any]) -> None:
        """Continue the epoch means of an interrupted epoch (after `before_train_epoch`)."""
        self.meters.reset()
        self.meters.total.update({str(k): float(v) for k, v in state["total"].items()})
        self.meters.count.update({str(k): int(v) for k, v in state["count"].items()})

    def evaluation(self, model: Any, data_loader: Any, cuda_enabled: bool = True) -> list:
        return []  # pretraining has no validation pass; retrieval is its own task
