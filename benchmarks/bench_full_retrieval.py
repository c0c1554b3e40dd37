"""Peak memory and time of the streaming full-retrieval protocol (`full_retrieval`: ITC top-k
over blocks of queries and gallery, then ITM re-ranking of the (N, k) short list) against a
dense computation in the manner of LAVIS's `compute_sim_matrix` (the N x M ITC matrix, plus
N x M and M x N score matrices filled with -100 and overwritten on each query's top-k by ITM),
on the same features and the same ITM stand-in.

Memory: every method runs in a fresh subprocess. After the inputs exist, the worker resets the
kernel's peak resident-set counter (writing "5" to /proc/self/clear_refs, Linux >= 4.0) and
reads VmHWM from /proc/self/status after one run: the peak RSS growth of the method itself,
torch's allocations included (tracemalloc does not see them). An unmeasured warm-up run comes
first (then glibc's malloc_trim), so first-touch code pages of libtorch, which the kernel may
also evict and re-fault at random, do not count. Where clear_refs is unavailable it falls back
to the growth of `ru_maxrss` over the first run, which under-reports when building the inputs
peaked higher than the method. Time: median over `--repeats` runs after the warm-up, one
torch thread by default (on a shared CPU, OpenMP barriers make multi-thread timings erratic).

Both methods rank with the same rule (pessimistic ties; hits outside the top-k are misses), so
their metrics must be identical; the script checks it. The dense baseline scores ITM pairs in
the same batches as ours (LAVIS calls ITM once per query, which is slower still).

    python benchmarks/bench_full_retrieval.py [--n 20000] [--m 5000] [--d 256] [--k 16]
        [--chunk-size 1024] [--repeats 3] [--inputs synthetic]

To benchmark a real model, add a builder to INPUTS: `(args) -> RetrievalInputs` holding the
model's ITC features and its ITM callbacks; `--inputs <name>` then runs both methods on it.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smoke import parse_with_smoke  # noqa: E402

from lavis_syncmask.common.processes import run_group  # noqa: E402
from lavis_syncmask.evaluation import batched_pair_scores, bidirectional_recalls, full_retrieval  # noqa: E402
from lavis_syncmask.evaluation.recall import RETRIEVAL_KS  # noqa: E402

SMOKE = {"n": 64, "m": 16, "d": 8, "k": 10, "chunk_size": 16, "itm_batch_size": 32, "repeats": 1}

PairScorer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
KS = RETRIEVAL_KS


@dataclass
class RetrievalInputs:
    image_feats: torch.Tensor  # (N, D) normalised ITC features of the image rows
    text_feats: torch.Tensor  # (M, D) one text per product
    row_product: np.ndarray  # (N,) text index of each row
    itm_i2t: PairScorer  # (image rows (n,), text indices (n,)) -> (n,)
    itm_t2i: PairScorer  # (text indices (n,), image rows (n,)) -> (n,)


def synthetic_inputs(args: argparse.Namespace) -> RetrievalInputs:
    """Products with 1+ views whose features are noisy copies of the product's text feature
    (noise set so that ITC i2t R@1 is about 60% at M = 5,000 and D = 256); the ITM stand-in is a cheap bilinear score that disagrees with ITC, so re-ranking matters."""
    g = torch.Generator().manual_seed(0)
    text = F.normalize(torch.randn(args.m, args.d, generator=g), dim=-1)
    extra = torch.randint(0, args.m, (args.n - args.m,), generator=g)
    row_product = torch.cat([torch.arange(args.m), extra])
    image = F.normalize(text[row_product] + 0.25 * torch.randn(args.n, args.d, generator=g), dim=-1)
    weight = 1.0 + 0.5 * torch.randn(args.d, generator=g)

    def itm_i2t(rows: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
        return torch.tanh((image[rows] * text[texts]) @ weight)

    return RetrievalInputs(
        image, text, row_product.numpy(), itm_i2t, lambda texts, rows: itm_i2t(rows, texts)
    )


INPUTS: dict[str, Callable[[argparse.Namespace], RetrievalInputs]] = {"synthetic": synthetic_inputs}


def run_ours(inp: RetrievalInputs, args: argparse.Namespace) -> dict:
    m = full_retrieval(
        inp.image_feats,
        inp.text_feats,
        inp.row_product,
        k_test=args.k,
        itm_i2t=inp.itm_i2t,
        itm_t2i=inp.itm_t2i,
        chunk_size=args.chunk_size,
        itm_batch_size=args.itm_batch_size,
    )
    return {key: m[key] for key in m if key.startswith(("i2t_", "t2i_")) or key == "r_mean"}


def _dense_scores(sims: torch.Tensor, k: int, itm: PairScorer, batch: int) -> torch.Tensor:
    """(Q, G) matrix of -100 holding the ITM score on each query's ITC top-k."""
    topk = sims.topk(k, dim=1).indices
    queries = torch.arange(sims.size(0)).repeat_interleave(k)
    itm_scores = batched_pair_scores(itm, queries, topk.flatten(), batch).view_as(topk)
    score = torch.full(sims.shape, -100.0)
    return score.scatter_(1, topk, itm_scores.float())


def _dense_ranks(
    score: torch.Tensor, hit_of: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """Pessimistic rank of the best hit, computed in row blocks (no extra dense matrix)."""
    ranks = []
    for start in range(0, score.size(0), 1024):
        block = score[start : start + 1024]
        hits = hit_of(torch.arange(start, start + block.size(0)))
        best = torch.where(hits, block, torch.tensor(float("-inf"))).amax(1, keepdim=True)
        ranks.append(((block >= best) & ~hits).sum(1))
    return torch.cat(ranks)


def run_dense(inp: RetrievalInputs, args: argparse.Namespace) -> dict:
    rp = torch.as_tensor(inp.row_product)
    sims = inp.image_feats @ inp.text_feats.T  # (N, M), kept alive as LAVIS does
    score_i2t = _dense_scores(sims, args.k, inp.itm_i2t, args.itm_batch_size)
    score_t2i = _dense_scores(sims.T, args.k, inp.itm_t2i, args.itm_batch_size)
    texts = torch.arange(sims.size(1))
    i2t = _dense_ranks(score_i2t, lambda rows: texts[None, :] == rp[rows][:, None])
    t2i = _dense_ranks(score_t2i, lambda t: rp[None, :] == t[:, None])
    return bidirectional_recalls(i2t, t2i, KS)


METHODS = {"ours": run_ours, "dense": run_dense}


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_kib(reset_worked: bool) -> int:
    if reset_worked:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _current_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _release_free_heap() -> None:
    """Hand freed heap pages back to the kernel (glibc), so a run after the warm-up cannot reuse
    memory that RSS already counts."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure(name: str, args: argparse.Namespace) -> dict:
    """One method's peak memory, run times and metrics, in this process."""
    torch.set_num_threads(args.threads or torch.get_num_threads())
    inp = INPUTS[args.inputs](args)
    method = METHODS[name]
    with torch.no_grad():
        can_reset = Path("/proc/self/clear_refs").exists()
        if can_reset:
            # Warm-up: first-touch code pages and lazy initialisation are not the method's cost.
            method(inp, args)
            _release_free_heap()
        reset = can_reset and _reset_peak()
        base = _current_kib() if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        times, metrics, peak_mib = [], {}, 0.0
        for i in range(args.repeats):
            start = time.perf_counter()
            metrics = method(inp, args)
            times.append(time.perf_counter() - start)
            if i == 0:
                peak_mib = (_peak_kib(reset) - base) / 1024
    return {"peak_mib": peak_mib, "times_s": times, "metrics": metrics, "hwm_reset": reset}


def spawn(method: str, argv: list[str]) -> dict:
    cmd = [sys.executable, __file__, *argv, "--worker", method]
    out = run_group(cmd)
    if out.returncode != 0:
        raise RuntimeError(f"{method} worker failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="image rows")
    parser.add_argument("--m", type=int, default=5_000, help="texts (products)")
    parser.add_argument("--d", type=int, default=256)
    parser.add_argument("--k", type=int, default=16, help="k_test")
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--itm-batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch default)")
    parser.add_argument("--inputs", default="synthetic", choices=list(INPUTS))
    parser.add_argument("--worker", choices=list(METHODS), help=argparse.SUPPRESS)
    args = parse_with_smoke(parser, SMOKE)
    if args.worker:
        print(json.dumps(measure(args.worker, args)))
        return
    commit = run_group(["git", "rev-parse", "--short", "HEAD"])
    threads = args.threads or torch.get_num_threads()
    print(
        f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"cpu_count={os.cpu_count()}, torch threads={threads}"
    )
    print(f"commit: {commit.stdout.strip() or 'unknown'}; config: {vars(args)}")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.smoke:  # in this process: a fresh child per method costs a whole `import lavis`
        res = {name: measure(name, args) for name in METHODS}
    else:
        res = {name: spawn(name, sys.argv[1:]) for name in METHODS}
    for name, r in res.items():
        print(
            f"[{name}] peak memory +{r['peak_mib']:.1f} MiB, time median "
            f"{statistics.median(r['times_s']):.3f} s over {len(r['times_s'])} runs, "
            f"r_mean {r['metrics']['r_mean']:.2f}"
        )
    ours, dense = res["ours"], res["dense"]
    same = (
        all(abs(ours["metrics"][k] - v) < 1e-9 for k, v in dense["metrics"].items())
        and ours["metrics"].keys() == dense["metrics"].keys()
    )
    print(f"metrics identical: {same}")
    print(f"memory ours / dense: {ours['peak_mib'] / max(dense['peak_mib'], 1e-9):.4f}")
    t_ours, t_dense = (statistics.median(r["times_s"]) for r in (ours, dense))
    print(f"time ours / dense: {t_ours / t_dense:.3f}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
