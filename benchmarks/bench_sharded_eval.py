"""Peak memory per rank and time of the full retrieval protocol on 1 process against 2 (gloo,
sharded by rank), and against LAVIS's `compute_sim_matrix`, at base width on CPU (issue 10,
item 5).

Base width means the `base` preset's token shapes: ViT at 256 px with 16 px patches (257 tokens)
and width 768, BERT width 768; the depths are cut (`--vision-depth`, `--text-layers`) so a CPU
encodes a few hundred rows in minutes. What grows with the rows is the per-image token cache
(rows x 257 x 768), which depth does not change. Every run is a fresh process (two for the
sharded one, via torchrun); memory is each process's peak resident-set growth (VmHWM after a
reset) from a built model and dataset to the end of the protocol, the larger rank's for 2.

    python benchmarks/bench_sharded_eval.py --rows 384

Targets (issue 10): per-rank peak at 2 ranks <= 0.6x one process; <= 0.25x of LAVIS's.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from smoke import parse_with_smoke

SMOKE = {"rows": 30, "k": 10, "batch": 32, "vision_depth": 1, "preset": "tiny", "image_size": 32}

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # this checkout's package, not an installed one

from lavis_syncmask.common.processes import check_finished, run_group  # noqa: E402


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def build(args: argparse.Namespace) -> tuple[Any, Any]:
    from lavis.common.registry import registry
    from lavis.processors.blip_processors import BlipImageEvalProcessor
    from omegaconf import OmegaConf

    import lavis_syncmask  # noqa: F401
    from lavis_syncmask.data.fashiongen_datasets import FashionGenRetrievalDataset
    from lavis_syncmask.data.processors import SyncMaskTextProcessor
    from lavis_syncmask.models.syncmask_fashion import SyncMaskFashion

    cfg = OmegaConf.load(SyncMaskFashion.default_config_path(args.preset)).model
    cfg.tokenizer = str(Path(args.data_dir) / "vocab")
    cfg.vision_depth, cfg.text_layers, cfg.fusion_layers = args.vision_depth, args.text_layers, 1
    cfg.queue_size, cfg.max_txt_len, cfg.use_mim = 256, 30, False
    cfg.image_size = args.image_size
    cfg.pretrained = None  # random weights: ALBEF's checkpoint has other depths (and is a download)
    torch.manual_seed(0)
    model = registry.get_model_class("syncmask_fashion").from_config(cfg).eval()
    dataset = FashionGenRetrievalDataset(
        Path(args.data_dir) / "fashiongen_256_256_validation.h5",
        BlipImageEvalProcessor(image_size=cfg.image_size),
        SyncMaskTextProcessor(),
    )
    return model, dataset


def measure(method: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one protocol in this process; returns peak RSS growth (MiB), seconds, metrics."""
    from lavis_syncmask.common.distributed import init_distributed

    if method == "sharded":
        init_distributed("gloo")
    torch.set_num_threads(1)
    model, dataset = build(args)
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS counter
    base = _status_kib("VmRSS")
    start = time.perf_counter()
    with torch.no_grad():
        if method == "lavis":
            from bench_retrieval_vs_lavis import LavisView
            from lavis.common.registry import registry
            from lavis.models.albef_models import compute_sim_matrix
            from lavis.tasks.retrieval import RetrievalTask

            registry.register_path("output_dir", tempfile.mkdtemp())
            dataset.image = list(range(len(dataset)))
            loader = torch.utils.data.DataLoader(
                dataset, batch_size=args.batch, collate_fn=dataset.collater
            )
            i2t, t2i = compute_sim_matrix(LavisView(model), loader, k_test=args.k)
            metrics = RetrievalTask._report_metrics(i2t, t2i, dataset.txt2img, dataset.img2txt)
        else:
            from omegaconf import OmegaConf

            from lavis_syncmask.tasks.retrieval import SyncMaskRetrievalTask

            run = {"protocol": "full", "k_test": args.k, "batch_size_eval": args.batch}
            task = SyncMaskRetrievalTask(OmegaConf.create({"run_cfg": run}), protocol="full")
            metrics = task.run_protocol(model, dataset)["metrics"]
    seconds = time.perf_counter() - start
    peak = (_status_kib("VmHWM") - base) / 1024
    return {"peak_mib": peak, "seconds": seconds, "metrics": metrics, "rows": len(dataset)}


def child(method: str, args: argparse.Namespace, procs: int = 1) -> list[dict[str, Any]]:
    """`measure` in fresh processes (torchrun for 2 ranks); one result per rank."""
    with tempfile.TemporaryDirectory() as tmp:
        script = [str(Path(__file__).resolve()), "--child", method, "--result-dir", tmp]
        script += ["--data-dir", args.data_dir, "--k", str(args.k), "--batch", str(args.batch)]
        script += ["--vision-depth", str(args.vision_depth), "--text-layers", str(args.text_layers)]
        script += ["--image-size", str(args.image_size), "--preset", args.preset]
        prefix = [sys.executable]
        if procs > 1:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            prefix += ["-m", "torch.distributed.run", f"--nproc_per_node={procs}"]
            prefix += ["--master_addr=127.0.0.1", f"--master_port={port}"]
        path = os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
        check_finished(run_group([*prefix, *script], env=env, capture=False), "the sharded run")
        return [json.loads(p.read_text()) for p in sorted(Path(tmp).glob("rank*.json"))]


def make_data(args: argparse.Namespace) -> None:
    from lavis_syncmask.synthetic import generate_catalogue

    products = max(1, args.rows // 3)  # about 3.5 views per product
    triplets = 0 if args.smoke else 4  # the FashionIQ tree is never read here
    generate_catalogue(Path(args.data_dir), 8, products, 0, triplets, progress=not args.smoke)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=384, help="about this many validation rows")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--batch", type=int, default=32, help="encoding and ITM batch size")
    parser.add_argument("--vision-depth", type=int, default=2)
    parser.add_argument("--text-layers", type=int, default=1)
    parser.add_argument("--image-size", type=int, default=256, help="the base preset's 256 px")
    parser.add_argument("--preset", choices=["base", "tiny"], default="base", help="the widths")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result-dir", default=None, help=argparse.SUPPRESS)
    args = parse_with_smoke(parser, SMOKE)
    if args.child:
        result = measure(args.child, args)
        rank = int(os.environ.get("RANK", 0))
        Path(args.result_dir, f"rank{rank}.json").write_text(json.dumps(result, default=float))
        return
    scratch = tempfile.TemporaryDirectory()
    if args.data_dir is None:
        args.data_dir = scratch.name
        make_data(args)
    commit = run_group(["git", "rev-parse", "--short", "HEAD"])
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores; commit {commit.stdout.strip()}")
    print(f"config: {vars(args)}")
    # Under --smoke the 1-process runs stay in this process (a fresh one costs a whole
    # `import lavis`); the 2 ranks always run under torchrun.
    one = measure("sharded", args) if args.smoke else child("sharded", args, procs=1)[0]
    two = child("sharded", args, procs=2)
    lavis = measure("lavis", args) if args.smoke else child("lavis", args)[0]
    worst = max(r["peak_mib"] for r in two)
    tokens = (args.image_size // 16) ** 2 + 1
    print(f"rows: {one['rows']}, {args.preset} widths, {tokens} tokens per image, k_test {args.k}")
    print(f"1 process : peak {one['peak_mib']:.0f} MiB, {one['seconds']:.1f} s")
    for rank, r in enumerate(two):
        print(f"2 ranks   : rank {rank} peak {r['peak_mib']:.0f} MiB, {r['seconds']:.1f} s")
    print(f"LAVIS     : peak {lavis['peak_mib']:.0f} MiB, {lavis['seconds']:.1f} s")
    print(f"per-rank memory, 2 ranks / 1 process: {worst / one['peak_mib']:.3f} (target <= 0.6)")
    print(f"per-rank memory, 2 ranks / LAVIS: {worst / lavis['peak_mib']:.3f} (target <= 0.25)")
    print(f"1 process / LAVIS memory: {one['peak_mib'] / lavis['peak_mib']:.3f}")
    print(f"time, 2 ranks / 1 process: {max(r['seconds'] for r in two) / one['seconds']:.3f}")
    same = all(r["metrics"] == one["metrics"] for r in two)
    print(f"2-rank metrics equal 1-process metrics: {same}")
    print(json.dumps({"one": one, "two": two, "lavis": lavis}, default=float))


if __name__ == "__main__":
    main()
