"""Approximate search at catalogue scale: the FAISS structures of ``--index-type ivf|hnsw``
(built by `lavis_syncmask.search.ann.build_ann`, the code an index run uses) against exact
search on ``--rows`` synthetic unit features at the model's dimension, reporting per type the
build time, the memory the structure takes (RSS growth while building, and its file size),
single-query time p50 / p95, and recall@10 against exact search (goal >= 0.95).

    python benchmarks/bench_ann.py [--rows 1000000] [--dim 256] [--queries 200] [--threads 1]
    python benchmarks/bench_ann.py --smoke     # seconds: 4,000 rows at 32-d

The features are clustered (200 centres, Gaussian spread), as image features of a catalogue
group by garment; uniformly random unit vectors have no neighbourhood structure and are not
what a catalogue looks like. Queries come from other centres than the rows (as text queries
are not image features; `clustered` with another seed). Each structure's search breadth is
calibrated as an index run calibrates it (`ann.calibrate`), on 200 such queries, and recall
is then measured on ``--queries`` others. 256 is the base model's ITC dimension
(``embed_dim``), 64 the tiny one's.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from smoke import parse_with_smoke  # a sibling script: benchmarks/ is on sys.path

from lavis_syncmask.search.ann import ANN_FILE, build_ann, write_ann

RECALL_GOAL = 0.95
#: HNSW search-time candidate counts measured on the built graph besides the default.
EF_SWEEP = (256, 512, 1024, 2048)


def clustered(rows: int, dim: int, seed: int, centres: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(centres, dim)).astype(np.float32)
    out = np.empty((rows, dim), dtype=np.float32)
    for start in range(0, rows, 100_000):  # in blocks: no float64 copy of the whole array
        n = min(100_000, rows - start)
        block = means[rng.integers(0, centres, n)] + 0.6 * rng.standard_normal((n, dim), np.float32)
        out[start : start + n] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def exact_top(features: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    scores = features @ query
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top])]


def timed(search, queries: np.ndarray) -> tuple[list[np.ndarray], dict[str, float]]:
    """Each query alone (as a served request is), its top 10 rows and the times."""
    search(queries[0])  # warm-up
    found, ms = [], []
    for query in queries:
        start = time.perf_counter()
        found.append(search(query))
        ms.append(1000 * (time.perf_counter() - start))
    return found, {"p50_ms": round(float(np.percentile(ms, 50)), 3),
                   "p95_ms": round(float(np.percentile(ms, 95)), 3)}  # fmt: skip


def bench_type(
    kind: str,
    features: np.ndarray,
    queries: np.ndarray,
    truth: list,
    work: Path,
    calibration: np.ndarray,
) -> dict:
    before = rss_mib()
    start = time.perf_counter()
    ann, params = build_ann(features, kind, queries=calibration)
    seconds = time.perf_counter() - start
    grown = rss_mib() - before
    write_ann(ann, work)
    size = (work / ANN_FILE).stat().st_size / 2**20

    def search(query: np.ndarray) -> np.ndarray:
        return ann.search(query[None], 10)[1][0]

    found, times = timed(search, queries)
    row = {"type": kind, "params": params, "build_s": round(seconds, 1),
           "rss_growth_mib": round(grown, 1), "file_mib": round(size, 1), **times,
           "recall_at_10": recall_at_10(found, truth)}  # fmt: skip
    if kind == "hnsw":  # the search-time knob, on the same graph: recall against query time
        row["ef_search_sweep"] = []
        for ef in EF_SWEEP:
            ann.hnsw.efSearch = ef
            found, ef_times = timed(search, queries)
            sweep = {"ef_search": ef, **ef_times, "recall_at_10": recall_at_10(found, truth)}
            row["ef_search_sweep"].append(sweep)
        ann.hnsw.efSearch = int(params["ef_search"])
    return row


def recall_at_10(found: list[np.ndarray], truth: list[np.ndarray]) -> float:
    shared = [len(set(f.tolist()) & set(t.tolist())) / 10 for f, t in zip(found, truth)]
    return round(float(np.mean(shared)), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="FAISS threads (build and query)")
    parser.add_argument("--types", default="ivf,hnsw")
    args = parse_with_smoke(parser, {"rows": 4000, "dim": 32, "queries": 20})
    import faiss

    faiss.omp_set_num_threads(args.threads)
    print(f"config: {vars(args)}; cpu_count={os.cpu_count()}, load average "
          f"{os.getloadavg()[0]:.1f}, faiss {faiss.__version__}")  # fmt: skip
    features = clustered(args.rows, args.dim, seed=0)
    drawn = clustered(200 + args.queries, args.dim, seed=1)
    calibration, queries = drawn[:200], drawn[200:]
    truth, exact = timed(lambda q: exact_top(features, q, 10), queries)
    results = [{"type": "exact", "build_s": 0.0, **exact, "recall_at_10": 1.0}]
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.types.split(","):
            results.append(bench_type(kind, features, queries, truth, Path(tmp), calibration))
            print(json.dumps(results[-1]))
    for row in results[1:]:
        for sweep in row.get("ef_search_sweep", []):
            print(f"{row['type']} efSearch {sweep['ef_search']}: recall@10 "
                  f"{sweep['recall_at_10']:.3f}, query p50 {sweep['p50_ms']} ms / p95 "
                  f"{sweep['p95_ms']} ms")  # fmt: skip
        verdict = "meets" if row["recall_at_10"] >= RECALL_GOAL else "MISSES"
        print(f"{row['type']}: recall@10 {row['recall_at_10']:.3f} ({verdict} {RECALL_GOAL}), "
              f"query p50 {row['p50_ms']} ms / p95 {row['p95_ms']} ms (exact: "
              f"{exact['p50_ms']} / {exact['p95_ms']} ms), build {row['build_s']} s, "
              f"+{row['rss_growth_mib']} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
