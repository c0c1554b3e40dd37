"""Load test of the search service on loopback: ``--clients`` concurrent clients (threads, each
with one keep-alive connection) send a bounded number of requests to
``python -m lavis_syncmask.search serve`` started as a subprocess, and the script reports
p50 / p95 / p99 latency (all requests and per route), the error count (goal 0) and the
server's resident memory before and after the measured requests (goal: growth < 5 %).

    python benchmarks/load_search.py [--index INDEX] [--clients 32] [--requests 10000]
        [--warmup 1000] [--products 100] [--threads 1]
    python benchmarks/load_search.py --smoke    # seconds: 8 clients, 120 requests

The request mix, in every 10: 6 text searches (k=8, varied words), 3 thumbnails (rows in
turn), 1 "why" view. Without ``--index`` a tiny model at random weights (speed does not depend
on the weights) indexes a synthetic catalogue of ``--products`` products first. Memory is the
server's VmRSS (Linux), read after a warm-up of ``--warmup`` requests, so that what the first
requests fill once (the thumbnail cache, at most 2048 PNGs; matplotlib's font and colour-map
caches; a malloc arena per worker thread) does not count as growth: in one process, 160 "why"
pictures grow RSS by 49, 19, 5, then 1 MiB per 40, and text queries by nothing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np
from smoke import parse_with_smoke  # a sibling script: benchmarks/ is on sys.path

from lavis_syncmask.common.processes import kill_group

WORDS = ["black", "red", "white", "blue", "leather", "silk", "cotton", "wool", "jacket",
         "dress", "shirt", "jeans", "sweater", "zip", "long sleeves", "round neck"]  # fmt: skip
RSS_GOAL = 0.05


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_index(work: Path, products: int) -> Path:
    """A synthetic catalogue indexed by a random tiny model (a bare state dict)."""
    import torch
    from omegaconf import OmegaConf

    from lavis_syncmask.cli.search import main as search_cli
    from lavis_syncmask.data.formats import TRAIN_FILE
    from lavis_syncmask.models.syncmask_fashion import SyncMaskFashion
    from lavis_syncmask.synthetic.generate import generate_catalogue

    cfg = OmegaConf.load(SyncMaskFashion.default_config_path("tiny")).model
    torch.save(SyncMaskFashion.from_config(cfg).state_dict(), work / "tiny.pth")
    data = generate_catalogue(work / "data", products, 1, seed=0, fashioniq_triplets=0,
                              progress=False)  # fmt: skip
    code = search_cli(["index", "--checkpoint", str(work / "tiny.pth"), "--model-type", "tiny",
                       "--data", str(data / TRAIN_FILE), "--out", str(work / "index"),
                       "--device", "cpu", "--quiet"])  # fmt: skip
    if code != 0:
        raise SystemExit("indexing the synthetic catalogue failed")
    return work / "index"


def start_server(index: Path, port: int, threads: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "lavis_syncmask.search", "serve", "--index", str(index),
               "--port", str(port), "--device", "cpu", "--threads", str(threads)]  # fmt: skip
    # Its own process group, so `kill_group` ends the server and anything it started.
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited: {server.stderr.read().decode()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            health = json.loads(conn.getresponse().read())
            conn.close()
            print(f"server up: {health}")
            return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("the server did not answer /health within 300 s")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def request_for(i: int, rows: int) -> tuple[str, str]:
    """(route, path) of request number ``i`` of the mix in the module doc."""
    text = " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(1 + i % 4))
    if i % 10 < 6:
        return "search", "/search?" + urllib.parse.urlencode({"q": text, "k": 8})
    if i % 10 < 9:
        return "thumb", f"/thumb/{i % rows}"
    return "why", "/why?" + urllib.parse.urlencode({"q": text, "row": i % rows})


def run_clients(port: int, clients: int, total: int, rows: int) -> list[tuple[str, float, bool]]:
    """``total`` requests shared by ``clients`` threads; (route, seconds, ok) per request."""
    counter, results = iter(range(total)), []
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            route, path = request_for(i, rows)
            start = time.perf_counter()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            with lock:
                results.append((route, time.perf_counter() - start, ok))
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = 1000 * np.asarray(seconds)
    return {f"p{q}_ms": round(float(np.percentile(ms, q)), 1) for q in (50, 95, 99)}


def report(results: list[tuple[str, float, bool]], wall: float, before: float, after: float):
    summary = {"requests": len(results), "errors": sum(not ok for _, _, ok in results),
               "seconds": round(wall, 1), "requests_per_s": round(len(results) / wall, 1),
               **percentiles([s for _, s, _ in results])}  # fmt: skip
    for route in ("search", "thumb", "why"):
        summary[route] = percentiles([s for r, s, _ in results if r == route])
    growth = (after - before) / before
    summary["rss_mib"] = {"before": round(before, 1), "after": round(after, 1),
                          "growth_pct": round(100 * growth, 2)}  # fmt: skip
    print(json.dumps(summary, indent=2))
    verdict = "meets" if summary["errors"] == 0 and growth < RSS_GOAL else "MISSES"
    print(f"{verdict} the goals: 0 errors (got {summary['errors']}), RSS growth < "
          f"{100 * RSS_GOAL:.0f} % (got {100 * growth:.2f} %)")  # fmt: skip
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", default=None, help="an index to serve (default: synthetic)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=10_000, help="measured requests")
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--products", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="the server's torch threads")
    args = parse_with_smoke(parser, {"clients": 8, "requests": 120, "warmup": 20, "products": 12})
    print(f"config: {vars(args)}; cpu_count={os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(args.index) if args.index else build_index(Path(tmp), args.products)
        rows = json.loads((index / "index.json").read_text())["rows"]
        port = free_port()
        server = start_server(index, port, args.threads)
        try:
            run_clients(port, args.clients, args.warmup, rows)
            before = rss_mib(server.pid)
            start = time.perf_counter()
            results = run_clients(port, args.clients, args.requests, rows)
            wall = time.perf_counter() - start
            after = rss_mib(server.pid)
        finally:
            kill_group(server)
        report(results, wall, before, after)


if __name__ == "__main__":
    main()
