"""Training-step throughput, peak memory and model FLOPs utilisation (MFU) of SyncMask against
LAVIS's own `AlbefPretrain` at the same size (issue 10, items 2 and 6), run by gpu_check.py.

Four models train on the same batch, interleaved round by round so clock and thermal drift hit
all alike: SyncMask, SyncMask with random masks, SyncMask without MIM, and ALBEF. `base` is
ViT-B/16 at 256 px with BERT 6 + 6 (the `base` preset), batch 64, bf16 autocast on CUDA; both
sides use a 30522-token vocabulary (BERT's size: the MLM head's cost depends on it) and 30-token
texts (ALBEF's `max_txt_len`). ALBEF is built offline: only its tokenizer and weight loading are
replaced (random weights). FLOPs are counted once per model by
`torch.utils.flop_counter.FlopCounterMode` over one forward + backward, and MFU divides the
achieved FLOP rate by the GPU's dense bf16 peak (`PEAK_BF16_TFLOPS`, by GPU name).

    python benchmarks/gpu_step_bench.py --size base --device cuda --out step.json
    python benchmarks/gpu_step_bench.py --size tiny --device cpu    # seconds, for the tests

Targets (issue 10): SyncMask step <= 1.3x ALBEF's with MIM, <= 1.05x without; MFU >= 40%.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from smoke import parse_with_smoke

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
SMOKE = {"size": "tiny", "device": "cpu", "warmup": 1, "rounds": 1, "steps": 1}

#: Dense (no sparsity) bf16 tensor-core peak in TFLOP/s, from the vendors' data sheets. Keys
#: are matched against `torch.cuda.get_device_name()`, most specific first.
PEAK_BF16_TFLOPS: dict[str, float] = {
    "GH200": 989.4,
    "H200": 989.4,
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.4,
    "B200": 2250.0,
    "A100": 312.0,
    "A800": 312.0,
    "L40S": 362.1,
    "L40": 181.0,
    "L4": 121.0,
    "A10G": 70.0,
    "A10": 125.0,
    "RTX 4090": 165.2,
    "RTX 3090": 71.0,
}
VARIANTS = ("syncmask", "random", "no_mim", "albef")
VOCAB_SIZE, TEXT_TOKENS = 30522, 30
SIZES: dict[str, dict[str, Any]] = {
    "base": {"model_type": "base", "batch": 64, "queue": 65536},
    "tiny": {"model_type": "tiny", "batch": 8, "queue": 64, "image_size": 64},
}


def peak_tflops(gpu_name: str) -> float | None:
    """The table's dense bf16 peak for a GPU name (None: not in the table, or a CPU)."""
    for key, value in PEAK_BF16_TFLOPS.items():
        if key.lower() in gpu_name.lower():
            return value
    return None


def write_bench_vocab(folder: Path) -> Path:
    """A BERT-sized vocabulary: the fixture's WordPiece vocab padded with unused tokens."""
    from model_fixtures import write_vocab

    vocab = write_vocab(folder) / "vocab.txt"
    tokens = vocab.read_text(encoding="utf-8").split("\n")
    tokens = [t for t in tokens if t]
    tokens += [f"[unused{i}]" for i in range(VOCAB_SIZE - len(tokens))]
    vocab.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return folder


def _syncmask_config(size: str, variant: str, vocab: Path) -> Any:
    from omegaconf import OmegaConf

    from lavis_syncmask.models.syncmask_fashion import SyncMaskFashion

    spec = SIZES[size]
    cfg = OmegaConf.load(SyncMaskFashion.default_config_path(spec["model_type"])).model
    cfg.tokenizer, cfg.queue_size, cfg.max_txt_len = str(vocab), spec["queue"], TEXT_TOKENS
    cfg.sync_warmup_steps = 0  # the teacher's masks from the first step: the cost measured
    cfg.image_size = spec.get("image_size", cfg.image_size)
    if variant == "random":
        cfg.strategy = "random"
    if variant == "no_mim":
        cfg.use_mim = False
    return cfg


def build_albef(syncmask_cfg: Any) -> torch.nn.Module:
    """LAVIS's `AlbefPretrain` with our encoders' sizes: same ViT and BERT blocks, random
    weights, our tokenizer (its `init_tokenizer` and `from_config` would download)."""
    from lavis.models.albef_models.albef_pretrain import AlbefPretrain

    from lavis_syncmask.data.tokenizer import resolve_tokenizer
    from lavis_syncmask.models.backbones import build_text_encoder, build_vision_encoder
    from lavis_syncmask.models.config import SyncMaskModelConfig

    bb = SyncMaskModelConfig.from_dict(syncmask_cfg).backbone
    tokenizer = resolve_tokenizer(bb.tokenizer)

    class OfflineAlbef(AlbefPretrain):
        @classmethod
        def init_tokenizer(cls) -> Any:
            return tokenizer

    return OfflineAlbef(
        image_encoder=build_vision_encoder(bb),
        text_encoder=build_text_encoder(bb, len(tokenizer)),
        queue_size=int(syncmask_cfg.queue_size),
        embed_dim=bb.embed_dim,
        max_txt_len=TEXT_TOKENS,
    )


def build(size: str, variant: str, vocab: Path, device: torch.device) -> tuple[Any, Any]:
    from lavis_syncmask.models.syncmask_fashion import SyncMaskFashion

    torch.manual_seed(0)
    cfg = _syncmask_config(size, "syncmask" if variant == "albef" else variant, vocab)
    model = build_albef(cfg) if variant == "albef" else SyncMaskFashion.from_config(cfg)
    model = model.to(device).train()
    return model, torch.optim.AdamW((p for p in model.parameters() if p.requires_grad), lr=1e-5)


def make_batch(size: str, model: Any, device: torch.device, batch: int) -> dict[str, Any]:
    from model_fixtures import batch as fixture_batch

    samples = fixture_batch(batch, seed=0, image_size=model.visual_encoder.patch_embed.img_size[0])
    samples = {k: v.to(device) if torch.is_tensor(v) else v for k, v in samples.items()}
    samples.update(epoch=0, iters=0, num_iters_per_epoch=100)  # ALBEF's alpha warm-up reads these
    return samples


def train_step(model: Any, optimizer: Any, samples: dict, amp: str | None) -> None:
    """One update as the runner makes it (`runner/loop.one_update`), on the model's own loss."""
    from lavis.tasks.base_task import BaseTask

    from lavis_syncmask.runner.loop import LoopSettings, one_update

    one_update(BaseTask(), model, samples, optimizer, LoopSettings(amp=amp))


def count_flops(model: Any, optimizer: Any, samples: dict, amp: str | None) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        train_step(model, optimizer, samples, amp)
    return int(counter.get_total_flops())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _allocated(device: torch.device) -> int:
    return torch.cuda.memory_allocated(device) if device.type == "cuda" else 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    amp = None if args.amp == "none" else args.amp
    batch = args.batch or SIZES[args.size]["batch"]
    entries: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        vocab = write_bench_vocab(Path(tmp))
        for variant in args.variants:
            before = _allocated(device)
            model, optimizer = build(args.size, variant, vocab, device)
            samples = make_batch(args.size, model, device, batch)
            for _ in range(args.warmup):
                train_step(model, optimizer, samples, amp)
            flops = count_flops(model, optimizer, samples, amp)
            _sync(device)
            entries[variant] = {
                "model": (model, optimizer, samples),
                "state_bytes": _allocated(device) - before,  # weights, optimizer state, queues
                "flops_per_step": flops,
                "step_s": [],
                "peak_step_bytes": 0,
            }
    for round_index in range(args.rounds):
        order = args.variants[round_index % len(args.variants) :]
        order += args.variants[: round_index % len(args.variants)]
        for variant in order:
            entry = entries[variant]
            model, optimizer, samples = entry["model"]
            _sync(device)
            base = _allocated(device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            start = time.perf_counter()
            for _ in range(args.steps):
                train_step(model, optimizer, samples, amp)
            _sync(device)
            entry["step_s"].append((time.perf_counter() - start) / args.steps)
            if device.type == "cuda":
                peak = torch.cuda.max_memory_allocated(device) - base
                entry["peak_step_bytes"] = max(entry["peak_step_bytes"], peak)
    return summarise(entries, args, device, amp, batch)


def summarise(entries: dict, args: argparse.Namespace, device: torch.device, amp, batch) -> dict:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = peak_tflops(name) if device.type == "cuda" else None
    results: dict[str, Any] = {}
    for variant, entry in entries.items():
        step = statistics.median(entry["step_s"])
        achieved = entry["flops_per_step"] / step / 1e12
        memory = (entry["state_bytes"] + entry["peak_step_bytes"]) / 2**30
        results[variant] = {
            "step_ms": round(step * 1e3, 2),
            "images_per_s": round(batch / step, 1),
            "tflops_per_step": round(entry["flops_per_step"] / 1e12, 4),
            "achieved_tflops": round(achieved, 2),
            "mfu": round(achieved / peak, 4) if peak else None,
            "peak_memory_gib": round(memory, 2) if device.type == "cuda" else None,
        }
    ratios = {}
    if "albef" in results:
        for variant in ("syncmask", "random", "no_mim"):
            if variant in results:
                ratios[f"{variant}_vs_albef_step"] = round(
                    results[variant]["step_ms"] / results["albef"]["step_ms"], 3
                )
    return {
        "size": args.size,
        "device": name,
        "peak_bf16_tflops": peak,
        "batch": batch,
        "amp": amp,
        "rounds": args.rounds,
        "steps_per_round": args.steps,
        "models": results,
        "ratios": ratios,
        "targets": {"syncmask_vs_albef_step": 1.3, "no_mim_vs_albef_step": 1.05, "mfu": 0.4},
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=list(SIZES), default="base")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", choices=["bf16", "fp16", "none"], default=None)
    parser.add_argument("--batch", type=int, default=0, help="0: the size's default")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model per round")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parse_with_smoke(parser, SMOKE, argv)
    if args.amp is None:
        args.amp = "bf16" if args.device.startswith("cuda") else "none"
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.device.startswith("cuda"):
        from lavis_syncmask.common.precision import enable_tf32

        enable_tf32()
    result = run(args)
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
