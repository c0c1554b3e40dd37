"""One benchmark run of `benchmarks/compare.py`: build a method's model, train it for a fixed
number of optimizer steps on the synthetic catalogue, evaluate it with the project's retrieval
protocols, and return every figure as plain JSON-able data.

The same data, batch size, step count, learning-rate schedule (LAVIS's own linear warm-up and
cosine functions, per step), optimizer (LAVIS runner's AdamW groups) and gradient clipping for
every method; only the model and the batch sampler differ. Each run uses one thread and
`torch.use_deterministic_algorithms`, so a (method, seed) pair gives the same numbers twice.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from compare_report import REFERENCE  # a sibling script: benchmarks/ is on sys.path

#: The six methods: model family, config overrides, batch sampler. (c), (e), (f) use plain
#: random batches (LAVIS's ALBEF / BLIP train on random batches).
METHODS: dict[str, dict[str, Any]] = {
    "a_syncmask": {
        "label": "(a) SyncMask as shipped",
        "arch": "syncmask_fashion",
        "sampler": "semi_hard",
        "model": {},
    },
    "b_random_masks": {
        "label": "(b) random masks",
        "arch": "syncmask_fashion",
        "sampler": "semi_hard",
        "model": {"strategy": "random"},
    },
    "c_random_batches": {
        "label": "(c) random batches",
        "arch": "syncmask_fashion",
        "sampler": "random",
        "model": {},
    },
    "d_no_mim": {
        "label": "(d) no MIM",
        "arch": "syncmask_fashion",
        "sampler": "semi_hard",
        "model": {"use_mim": False},
    },
    "e_albef": {
        "label": "(e) LAVIS AlbefPretrain",
        "arch": "albef_pretrain",
        "sampler": "random",
        "model": {},
    },
    "f_blip": {
        "label": "(f) LAVIS BlipPretrain",
        "arch": "blip_pretrain",
        "sampler": "random",
        "model": {},
    },
}
#: Objective settings the baselines take from the syncmask tiny preset, so all share them.
SHARED_OBJECTIVE_KEYS = ("queue_size", "momentum", "alpha", "temp")


@dataclass(frozen=True)
class Recipe:
    """Everything a run depends on besides (method, seed, catalogue)."""

    steps: int = 600
    batch_size: int = 32
    # A tiny model from scratch needs a high peak rate to leave the ITC plateau in 450 steps:
    # at 5e-4 or 1e-3 the ITM head of SyncMask was still near chance at the end (AUC 0.51 to
    # 0.59); at 2e-3 0.83 and at 3e-3 0.91 (one seed each). LAVIS's ALBEF stayed at chance at
    # every rate tried (5e-4 to 3e-3, 5% or 25% warm-up); see the README's recipe notes.
    init_lr: float = 3e-3
    min_lr: float = 1e-5
    warmup_lr: float = 1e-5
    warmup_share: float = 0.05  # of the steps, linear warm-up from warmup_lr
    weight_decay: float = 0.02
    max_grad_norm: float = 5.0
    # The ITC temperature stays at its initial 0.07 for every method. Learned at a 3e-3 peak
    # rate it fell to 0.045 within 100 steps for SyncMask and to 0.02 within 60 for ALBEF
    # (0.012 at the end), gradient spikes followed, and SyncMask (seed 0) reached 17.5
    # full-protocol mean recall against 43.0 with it fixed.
    learn_temp: bool = False
    # One batch of queue for every method (LAVIS's ALBEF accepts no less). With the tiny
    # preset's 256, ITC alone collapsed the features (mean cosine 0.99) in LAVIS's ALBEF and in
    # SyncMask's model alike (`probe_collapse.py`), and ALBEF stayed at chance; with 32 its
    # full-protocol mean recall went from 2.2 to 24.8 (seed 0). Our reading, not proven: queue
    # entries from teachers up to 8 steps old can be told from the current batch by the
    # encoders' early drift alone, which lowers the ITC loss without matching any pair.
    queue_size: int = 32
    group_size: int = 4
    # Semi-hard methods draw plain random batches for this many first epochs (the sampler's
    # `random_epochs`; 0 uses semi-hard batches from the start). With 0, the runs that left the
    # chance-level ITC plateau late were the weak ones (`plateau_exit.py`, Spearman -0.62), and
    # SyncMask's seeds spread to 37.9 +- 6.1 full-protocol mean recall; with 3, 44.0 +- 0.4.
    # Not a cure-all: runs still on the plateau at the switch (step 168) stayed weak, and the
    # arm without MIM, which leaves it later, spread from 44.2 +- 2.8 to 31.8 +- 10.5.
    random_batch_epochs: int = 3
    sync_warmup_share: float = 0.1  # random masks for this share of the steps (preset: 50 steps)
    image_size: int = 128
    model: dict[str, Any] = field(default_factory=dict)  # syncmask_fashion overrides for all
    eval_repeats: int = 5  # sample-100 draws
    eval_queries: int = 1000  # capped at the number of validation products
    k_test: int = 16
    itm_pairs: int = 512  # validation pairs for the ITM AUC


def build_model(method: str, recipe: Recipe, vocab: Path) -> torch.nn.Module:
    """The method's model at the tiny preset's sizes, random init."""
    from omegaconf import OmegaConf

    from lavis_syncmask.baselines import build_baseline
    from lavis_syncmask.common.paths import config_path
    from lavis_syncmask.models.syncmask_fashion import SyncMaskFashion

    spec = METHODS[method]
    cfg = OmegaConf.load(config_path("models", "syncmask_fashion_tiny.yaml")).model
    cfg.tokenizer = str(vocab)
    cfg.image_size = recipe.image_size
    cfg.sync_warmup_steps = int(recipe.sync_warmup_share * recipe.steps)
    cfg.queue_size = recipe.queue_size
    for key, value in {**recipe.model, **spec["model"]}.items():
        cfg[key] = value
    if spec["arch"] == "syncmask_fashion":
        model = SyncMaskFashion.from_config(cfg)
    else:
        baseline = {key: cfg[key] for key in SHARED_OBJECTIVE_KEYS}
        baseline.update(arch=spec["arch"], size_preset="tiny", tokenizer=str(vocab))
        baseline["image_size"] = recipe.image_size
        model = build_baseline(baseline)
    model.temp.requires_grad_(recipe.learn_temp)  # all four classes name it `temp`
    return model


def optimizer_for(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """AdamW with LAVIS runner's groups: no weight decay on biases, norms and 1-d tensors."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            plain = p.ndim < 2 or "bias" in name or "ln" in name or "bn" in name
            (no_decay if plain else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": recipe.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=recipe.init_lr, betas=(0.9, 0.999))


def set_lr(optimizer: torch.optim.Optimizer, step: int, recipe: Recipe) -> None:
    """LAVIS's `warmup_lr_schedule`, then `cosine_lr_schedule` over the remaining steps."""
    from lavis.common.optims import cosine_lr_schedule, warmup_lr_schedule

    warm = max(1, int(recipe.warmup_share * recipe.steps))
    if step < warm:
        warmup_lr_schedule(optimizer, step, warm, recipe.warmup_lr, recipe.init_lr)
    else:
        cosine_lr_schedule(
            optimizer, step - warm, recipe.steps - warm, recipe.init_lr, recipe.min_lr
        )


def datasets(data_dir: Path, image_size: int) -> tuple[Any, Any]:
    """(train pretraining split with sidecar fields, validation retrieval split)."""
    from lavis.common.registry import registry
    from omegaconf import OmegaConf

    processors = {
        "vis_processor": {
            "train": {"name": "blip_image_eval", "image_size": image_size},
            "eval": {"name": "blip_image_eval", "image_size": image_size},
        },
        "text_processor": {"train": {"name": "syncmask_text"}, "eval": {"name": "syncmask_text"}},
    }
    out = []
    for name, split in (("fashiongen_pretrain", "train"), ("fashiongen_retrieval", "val")):
        cfg = OmegaConf.create(
            {"data_root": str(data_dir), "text_fields": "description", **processors}
        )
        out.append(registry.get_builder_class(name)(cfg).build_datasets()[split])
    return out[0], out[1]


def batches(train: Any, method: str, recipe: Recipe, seed: int):
    """Endless `(epoch, iters, iters_per_epoch, batch)` from the method's batch sampler (plain
    random batches for the first `recipe.random_batch_epochs` epochs)."""
    from torch.utils.data import DataLoader

    from lavis_syncmask.runner.loaders import SamplerSettings, build_batch_sampler, sampler_metadata
    from lavis_syncmask.sampling.batch_sampler import SemiHardBatchSampler

    knobs = {"group_size": recipe.group_size, "random_epochs": recipe.random_batch_epochs}
    sampler = build_batch_sampler(
        SemiHardBatchSampler,
        sampler_metadata(train),
        SamplerSettings(METHODS[method]["sampler"], knobs),
        batch_size=recipe.batch_size,
        seed=seed,
        num_replicas=1,
        rank=0,
    )
    loader = DataLoader(train, batch_sampler=sampler, collate_fn=train.collater)
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        for i, batch in enumerate(loader):
            yield epoch, i, len(loader), batch
        epoch += 1


def albef_word_precision(model: Any, samples: dict[str, Any]) -> float:
    """Share of ALBEF's masked content-word tokens that the paired view shows (its MLM masks
    are per token, over every non-special token; stop-words and punctuation are left out here
    as in the SyncMask statistic)."""
    from lavis_syncmask.masking import TokenTables, word_units
    from lavis_syncmask.models.diagnostics import visible_tokens

    mask = model.last_mlm_mask
    tok = model.tokenizer(
        list(samples["text_input"]),
        padding="max_length",
        truncation=True,
        max_length=model.max_txt_len,
        return_tensors="pt",
        return_offsets_mapping=True,
    )
    units = word_units(
        tok.input_ids, tok.attention_mask, TokenTables.from_tokenizer(model.tokenizer), True
    )
    content = units.word_ids >= 0
    visible = visible_tokens(tok.offset_mapping, samples["visible_spans"])
    masked = mask.cpu() & content
    return float((masked & visible).sum() / masked.sum()) if masked.any() else math.nan


def train(model: Any, method: str, recipe: Recipe, train_set: Any, seed: int) -> dict[str, Any]:
    """`recipe.steps` optimizer steps; per-step loss terms and mask statistics."""
    optimizer = optimizer_for(model, recipe)
    stream = batches(train_set, method, recipe, seed)
    history: dict[str, list[float]] = {}
    model.train()
    start = time.perf_counter()
    for step in range(recipe.steps):
        epoch, iters, per_epoch, samples = next(stream)
        samples.update(epoch=epoch, iters=iters, num_iters_per_epoch=per_epoch)
        set_lr(optimizer, step, recipe)
        out = model(samples)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
        optimizer.step()
        record = {
            k: float(getattr(out, k).detach())
            for k in ("loss", "loss_itc", "loss_itm", "loss_mlm", "loss_mim", "loss_lm")
            if getattr(out, k, None) is not None
        }
        stats = getattr(out, "mask_stats", None) or {}
        for key in ("word_sync_precision", "patch_sync_precision"):
            if key in stats:
                record[key] = float(stats[key])
        if method == REFERENCE:
            record["word_sync_precision"] = albef_word_precision(model, samples)
        for key, value in record.items():
            history.setdefault(key, []).append(value)
        if not math.isfinite(record["loss"]):
            raise FloatingPointError(f"{method} seed {seed}: loss {record['loss']} at step {step}")
    return {"history": history, "train_s": time.perf_counter() - start}


@torch.no_grad()
def itm_auc(model: Any, val: Any, pairs: int, seed: int) -> float:
    """P(ITM match score of a true pair > that of a pair with another product's text), over
    `pairs` validation rows: 0.5 is chance."""
    from lavis_syncmask.models import inference

    rng = np.random.default_rng(seed)
    rows = rng.choice(len(val), size=min(pairs, len(val)), replace=False)
    row_text = np.asarray(val.row_product)[rows]
    other = (row_text + rng.integers(1, len(val.text), size=rows.size)) % len(val.text)
    _, ids, att = inference.text_features(model, val.text)
    cache_rows = inference.row_encoder(model, val, 64)
    texts = inference.text_encoder(model, ids, att, 64)
    score = inference.make_itm_scorer(model, cache_rows, texts, att)
    pos = score(torch.as_tensor(rows), torch.as_tensor(row_text)).double()
    neg = score(torch.as_tensor(rows), torch.as_tensor(other)).double()
    return float(
        (pos[:, None] > neg[None, :]).double().mean()
        + 0.5 * (pos[:, None] == neg[None, :]).double().mean()
    )


def evaluate(model: Any, val: Any, recipe: Recipe, seed: int) -> dict[str, Any]:
    from lavis_syncmask.tasks.retrieval import evaluate_retrieval

    model.eval()
    common = {"batch_size": 64, "k_test": recipe.k_test}
    n_products = len(val.text)
    s100 = evaluate_retrieval(
        model,
        val,
        "sample100",
        seeds=tuple(range(recipe.eval_repeats)),
        n_queries=min(recipe.eval_queries, n_products),
        **common,
    )["metrics"]
    full = evaluate_retrieval(model, val, "full", **common)["metrics"]
    keep = [f"{d}_r{k}" for d in ("i2t", "t2i") for k in (1, 5, 10)] + ["r_mean"]
    return {
        "sample100": {k: s100[k] for k in keep},
        "full": {k: full[k] for k in keep},
        "itm_auc": itm_auc(model, val, recipe.itm_pairs, seed),
    }


def prepare_run(method: str, seed: int, data: Path, recipe: Recipe) -> tuple[Any, Any, Any]:
    """(model, train split, validation split) for one (method, seed) in this process, set to
    one thread and deterministic algorithms and seeded, so only the seed varies between runs."""
    import lavis_syncmask  # noqa: F401  registers builders and processors
    from lavis_syncmask.runner.loop import seed_everything

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    seed_everything(seed)
    train_set, val = datasets(data, recipe.image_size)
    return build_model(method, recipe, data / "vocab"), train_set, val


def run_one(
    method: str, seed: int, data_dir: str, recipe: Recipe, save_dir: str | None = None
) -> dict[str, Any]:
    """Train and evaluate one (method, seed) in this process; one thread, deterministic.
    With `save_dir`, the weights go to `<save_dir>/<catalogue>_<method>_s<seed>_<steps>steps.pth`."""
    data = Path(data_dir)
    model, train_set, val = prepare_run(method, seed, data, recipe)
    trained = train(model, method, recipe, train_set, seed)
    metrics = evaluate(model, val, recipe, seed)
    if save_dir:
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        torch.save(
            model.state_dict(),
            Path(save_dir) / f"{data.name}_{method}_s{seed}_{recipe.steps}steps.pth",
        )
    history = trained["history"]
    # After SyncMask's warm-up of random masks, the same window for every method; no MIM
    # means no patch masks were trained with.
    after = int(recipe.sync_warmup_share * recipe.steps)
    keys = ["word_sync_precision"] + ([] if method == "d_no_mim" else ["patch_sync_precision"])
    sync = {k: float(np.nanmean(history[k][after:])) for k in keys if k in history}
    return {
        "method": method,
        "seed": seed,
        **metrics,
        "sync": sync,
        "train_s": trained["train_s"],
        "history": history,
    }
