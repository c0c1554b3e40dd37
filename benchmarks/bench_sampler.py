"""Benchmark of the semi-hard batch sampler (method.md section 4).

Part 1 (quality): on the train h5 of a synthetic catalogue (`--data-dir`, written by
`python -m lavis_syncmask.synthetic --out DIR`), or on generated texts when no catalogue is
given, build the sampler in `random`, `grouped` and `semi_hard` mode and print the mean
similarity of in-batch negatives and the false negatives per batch. Targets: semi_hard has no
false negatives and at least 2x the mean negative similarity of random.

Part 2 (scale, on one core): ~260,000 FashionGen-like rows; build time (target <= 60 s), the
build's peak extra memory (target <= 2 GB; resident set size sampled every 5 ms by a thread,
peak minus the RSS just before the build) and the time of one epoch of batches of 64
(target <= 10 s).

    python benchmarks/bench_sampler.py --data-dir data/synthetic --batch-size 32
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, set before numpy loads its BLAS

import argparse  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fashion_texts import fashion_catalogue  # noqa: E402
from smoke import parse_with_smoke  # noqa: E402

from lavis_syncmask.sampling.batch_sampler import SemiHardBatchSampler  # noqa: E402

MODES = ("random", "grouped", "semi_hard")
SMOKE = {"batch_size": 8, "quality_products": 60, "scale_products": 120}


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def read_train_h5(data_dir: Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Texts, product ids, subcategories and categories of the train split, per row."""
    import h5py

    files = sorted(data_dir.glob("*train*.h5"))
    if not files:
        raise FileNotFoundError(f"no *train*.h5 file in {data_dir}")
    with h5py.File(files[0], "r") as h5:
        texts = [row[0].decode("latin-1") for row in h5["input_description"][:]]
        products = np.asarray(h5["input_productID"][:]).reshape(-1).astype(np.int64)
        subs = np.array([row[0].decode("latin-1") for row in h5["input_subcategory"][:]])
        cats = np.array([row[0].decode("latin-1") for row in h5["input_category"][:]])
    print(f"catalogue: {files[0]} ({len(texts)} rows, {len(np.unique(products))} products)")
    return texts, products, subs, cats


def quality(data: tuple, batch_size: int, seed: int) -> None:
    print(f"\n== negatives per batch (batch {batch_size}, group 4, one epoch, seed {seed})")
    stats = {}
    for mode in MODES:
        start = time.perf_counter()
        sampler = SemiHardBatchSampler(*data, batch_size, mode=mode, seed=seed)
        stats[mode] = sampler.epoch_statistics()
        s = stats[mode]
        print(
            f"{mode:>9}: mean negative similarity {s['mean_negative_similarity']:.4f}  "
            f"false negatives / batch {s['false_negatives_per_batch']:.3f}  "
            f"same-subcategory pairs {s['same_group_fraction']:.3f}  "
            f"({int(s['num_batches'])} batches, {time.perf_counter() - start:.1f} s)"
        )
    ratio = (
        stats["semi_hard"]["mean_negative_similarity"] / stats["random"]["mean_negative_similarity"]
    )
    fn = stats["semi_hard"]["false_negatives_per_batch"]
    print(
        f"semi_hard / random mean negative similarity: {ratio:.2f}x (target >= 2x: "
        f"{'PASS' if ratio >= 2 else 'FAIL'})"
    )
    print(
        f"semi_hard false negatives per batch: {fn:.3f} (target 0: {'PASS' if fn == 0 else 'FAIL'})"
    )


class PeakRss:
    """Peak resident set size above the level at start, sampled by a thread (Linux /proc)."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _poll(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def scale(n_products: int, seed: int) -> None:
    start = time.perf_counter()
    data = fashion_catalogue(n_products, seed=seed)
    print(
        f"\n== scale: {len(data[0])} rows, {n_products} products, "
        f"{len(set(data[0]))} distinct texts, {len(np.unique(data[2]))} subcategories "
        f"(generated in {time.perf_counter() - start:.1f} s)"
    )
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with PeakRss() as rss:
        start = time.perf_counter()
        sampler = SemiHardBatchSampler(*data, 64, mode="semi_hard", seed=seed)
        build = time.perf_counter() - start
    extra_gb = (rss.peak - rss.base) / 2**30
    maxrss_delta = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - maxrss_before
    print(f"build: {build:.1f} s (target <= 60 s: {'PASS' if build <= 60 else 'FAIL'})")
    print(
        f"build peak extra RSS: {extra_gb:.2f} GB (sampled; target <= 2 GB: "
        f"{'PASS' if extra_gb <= 2 else 'FAIL'}); ru_maxrss delta {maxrss_delta / 2**30:.2f} GB; "
        f"process peak {rss.peak / 2**30:.2f} GB"
    )
    for epoch in (1, 2):
        sampler.set_epoch(epoch)
        start = time.perf_counter()
        batches = list(sampler)
        took = time.perf_counter() - start
        rows = np.concatenate(batches)
        print(
            f"epoch {epoch}: {len(batches)} batches of 64 in {took:.1f} s (target <= 10 s: "
            f"{'PASS' if took <= 10 else 'FAIL'}); {len(np.unique(rows))} distinct rows of "
            f"{len(rows)}"
        )
    start = time.perf_counter()
    stats = sampler.epoch_statistics()
    print(
        f"epoch_statistics: {time.perf_counter() - start:.1f} s: "
        + ", ".join(f"{k} {v:.4f}" for k, v in stats.items())
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="synthetic catalogue folder")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quality-products",
        type=int,
        default=5000,
        help="products of the generated corpus when no --data-dir is given",
    )
    parser.add_argument("--scale-products", type=int, default=68_000)
    parser.add_argument("--skip-scale", action="store_true")
    args = parse_with_smoke(parser, SMOKE, argv)
    torch.set_num_threads(1)
    print(
        f"machine: {platform.platform()}, python {platform.python_version()}, "
        f"{os.cpu_count()} cpus (benchmark limited to 1 thread), "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"commit: {git_commit()}")
    print(f"config: {vars(args)}")
    with threadpool_limits(1):
        if args.data_dir is not None:
            data = read_train_h5(args.data_dir)
        else:
            print(
                f"no --data-dir: quality part runs on generated texts "
                f"({args.quality_products} products, benchmarks/fashion_texts.py)"
            )
            data = fashion_catalogue(args.quality_products, seed=args.seed)
        quality(data, args.batch_size, args.seed)
        if not args.skip_scale:
            scale(args.scale_products, args.seed)


if __name__ == "__main__":
    main()
