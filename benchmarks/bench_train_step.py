"""Training-step cost of SyncMask masks against random masks, and of MIM, measured side by side.

Each configuration trains the same model size on the same random batches; step times are
interleaved (A, B, A, B, ...) so machine noise hits both alike, and the median is compared.
Peak memory is the peak resident-set growth from a built model to the end of three steps
(activations, gradients, optimizer state), measured in a fresh subprocess per configuration on
CPU (torch.cuda.max_memory_allocated on GPU).

    python benchmarks/bench_train_step.py [--sizes tiny small] [--steps 20] [--device cpu]

Targets (issue 3): syncmask / random step time <= 1.05, peak memory ratio <= 1.05.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from smoke import parse_with_smoke

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

SIZES = {
    # tiny = the shipped tiny preset at 128 px; small = 4x wider, 2x deeper, at 256 px.
    "tiny": {"image_size": 128},
    "small": {
        "image_size": 256,
        "vision_width": 256,
        "vision_depth": 6,
        "vision_heads": 8,
        "text_width": 256,
        "text_layers": 3,
        "fusion_layers": 3,
        "text_heads": 8,
        "text_intermediate": 1024,
        "embed_dim": 128,
        "mim_decoder_dim": 128,
    },
}
SMOKE = {"sizes": ["tiny"], "steps": 1, "warmup": 0, "batch_size": 4}
VARIANTS = {
    "syncmask": {"strategy": "syncmask"},
    "random": {"strategy": "random"},
    "syncmask_no_mim": {"strategy": "syncmask", "use_mim": False},
}


def build(size: str, variant: str, vocab: Path, device: str):
    from model_fixtures import tiny_config

    from lavis_syncmask.models.syncmask_fashion import SyncMaskFashion

    torch.manual_seed(0)
    cfg = tiny_config(vocab, **SIZES[size], **VARIANTS[variant], queue_size=256)
    model = SyncMaskFashion.from_config(cfg).to(device).train()
    return model, torch.optim.AdamW(model.parameters(), lr=1e-4)


def step(model, optimizer, samples) -> None:
    """One update as the runner makes it (`runner/loop.one_update`), on the model's own loss."""
    from lavis.tasks.base_task import BaseTask

    from lavis_syncmask.runner.loop import LoopSettings, one_update

    one_update(BaseTask(), model, samples, optimizer, LoopSettings())


def make_batch(size: str, batch_size: int, device: str) -> dict:
    from model_fixtures import batch

    samples = batch(batch_size, seed=0, image_size=SIZES[size]["image_size"])
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in samples.items()}


def time_pair(size: str, a: str, b: str, args, vocab: Path) -> dict[str, float]:
    models = {v: build(size, v, vocab, args.device) for v in (a, b)}
    samples = make_batch(size, args.batch_size, args.device)
    times: dict[str, list[float]] = {a: [], b: []}
    for i in range(args.warmup + args.steps):
        for variant in (a, b) if i % 2 == 0 else (b, a):
            if args.device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            step(*models[variant], samples)
            if args.device == "cuda":
                torch.cuda.synchronize()
            if i >= args.warmup:
                times[variant].append(time.perf_counter() - start)
    return {v: statistics.median(t) for v, t in times.items()}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_peak(size: str, variant: str, vocab: str, device: str, batch_size: int) -> float:
    """Peak memory growth (MiB) over three training steps of a freshly built model."""
    import ctypes

    model, optimizer = build(size, variant, Path(vocab), device)
    samples = make_batch(size, batch_size, device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed build-time memory back first
        Path("/proc/self/clear_refs").write_text("5")  # resets the peak RSS (VmHWM)
        base = _status_kib("VmRSS") * 1024
    for _ in range(3):
        step(model, optimizer, samples)
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else _status_kib("VmHWM") * 1024
    return (peak - base) / 2**20


def peak_memory(size: str, variant: str, args, vocab: Path) -> float:
    """`measure_peak` in a fresh process, so one configuration's caches never help another."""
    from lavis_syncmask.common.processes import check_finished, run_group  # the children skip it

    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "import bench_train_step as b; "
        f"print(b.measure_peak({size!r}, {variant!r}, {str(vocab)!r}, {args.device!r}, "
        f"{args.batch_size}))"
    )
    out = check_finished(run_group([sys.executable, "-c", code]), "the peak-memory child")
    return float(out.stdout.strip().splitlines()[-1])


def peak_here(size: str, variant: str, args: argparse.Namespace, vocab: Path) -> float:
    """`measure_peak` in this process (smoke runs only: earlier models' caches help it)."""
    return measure_peak(size, variant, str(vocab), args.device, args.batch_size)


def main() -> None:
    from lavis_syncmask.common.processes import run_group  # the children skip it

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"], choices=list(SIZES))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parse_with_smoke(parser, SMOKE)
    from model_fixtures import write_vocab

    commit = run_group(["git", "rev-parse", "--short", "HEAD"])
    print(f"machine: {platform.platform()}, {torch.get_num_threads()} threads, {args.device}")
    print(f"commit: {commit.stdout.strip() or 'unknown'}; config: {vars(args)}")
    # Under --smoke in this process: a fresh child per variant costs a whole `import lavis`.
    peak = peak_here if args.smoke else peak_memory
    with tempfile.TemporaryDirectory() as tmp:
        vocab = write_vocab(Path(tmp))
        results = {}
        for size in args.sizes:
            t = time_pair(size, "syncmask", "random", args, vocab)
            m = time_pair(size, "syncmask", "syncmask_no_mim", args, vocab)
            mem = {v: peak(size, v, args, vocab) for v in ("syncmask", "random")}
            results[size] = {"time_s": t, "mim_pair_time_s": m, "peak_mib": mem}
            print(
                f"[{size}] step syncmask {t['syncmask'] * 1e3:.1f} ms, random "
                f"{t['random'] * 1e3:.1f} ms, ratio {t['syncmask'] / t['random']:.3f} "
                f"(target <= 1.05)"
            )
            print(
                f"[{size}] with MIM {m['syncmask'] * 1e3:.1f} ms, without MIM "
                f"{m['syncmask_no_mim'] * 1e3:.1f} ms, ratio "
                f"{m['syncmask'] / m['syncmask_no_mim']:.3f}"
            )
            print(
                f"[{size}] peak memory syncmask {mem['syncmask']:.1f} MiB, random "
                f"{mem['random']:.1f} MiB, ratio {mem['syncmask'] / max(mem['random'], 1e-9):.3f}"
                " (target <= 1.05)"
            )
        print(json.dumps(results))


if __name__ == "__main__":
    main()
