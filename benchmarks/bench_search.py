"""Product search speed with the tiny model on 2 CPU threads, against the issue's targets:

1. indexing: ITC image features of every row of a synthetic-catalogue train h5 (gzip chunks,
   256 px images decoded, resized to 128 px, encoded), rows per second and the time that rate
   gives for 100,000 rows (an extrapolation unless --products makes the file that large);
   with --catalogue-rows N, also the measured wall time of `python -m lavis_syncmask.search
   index` over a CSV catalogue of N rows (N/2 products x 2 JPEG views of 300x400 and 256x256
   px, each image distinct), with the indexing process's peak resident memory;
2. a text query (one torch thread) over --query-rows (default 100,000) indexed items without ITM re-ranking: the
   text encoding plus the scoring and best-row-per-product top-k, median and p95 over
   --queries different queries, against the 50 ms target.

    python benchmarks/bench_search.py [--products 150] [--query-rows 100000] [--queries 50]
        [--threads 2] [--query-threads 1] [--checkpoint CKPT] [--catalogue-rows 100000]

Without --checkpoint the model is the tiny preset at random initialisation: speed does not
depend on the weights. Prints the machine, the commit and the configuration first.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from smoke import parse_with_smoke

QUERY_TARGET_MS = 50.0
TARGET_ROWS = 100_000
SMOKE = {"products": 4, "query_rows": 64, "queries": 2, "threads": 1, "catalogue_rows": 6}
QUERIES = [
    "black leather jacket with a zip",
    "red silk dress",
    "white cotton shirt with long sleeves",
    "blue denim jeans",
    "grey wool sweater with a round neck",
]


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
            check=True, cwd=Path(__file__).resolve().parent,
        )  # fmt: skip
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def tiny_search_model(checkpoint: str | None, work: Path):
    from lavis_syncmask.models.syncmask_fashion import SyncMaskFashion
    from lavis_syncmask.search.model import load_search_model

    if checkpoint is None:  # a random-init tiny model saved as a bare state dict
        from omegaconf import OmegaConf

        cfg = OmegaConf.load(SyncMaskFashion.default_config_path("tiny")).model
        checkpoint = str(work / "tiny_random.pth")
        torch.save(SyncMaskFashion.from_config(cfg).state_dict(), checkpoint)
        return load_search_model(checkpoint, "tiny")
    return load_search_model(checkpoint)


def bench_index(search, work: Path, products: int) -> dict:
    from lavis_syncmask.data.fashiongen import FashionGenH5
    from lavis_syncmask.data.formats import TRAIN_FILE
    from lavis_syncmask.search.index import build_index
    from lavis_syncmask.synthetic.generate import generate_catalogue

    data = generate_catalogue(work / "data", products, 1, seed=0, fashioniq_triplets=0,
                              progress=False)  # fmt: skip
    reader = FashionGenH5(data / TRAIN_FILE)
    meta = build_index(search, reader, work / "index", {"data": str(data / TRAIN_FILE)},
                       batch_size=64, progress=False)  # fmt: skip
    rate = meta["rows"] / meta["seconds"]
    return {"rows": meta["rows"], "seconds": meta["seconds"], "rows_per_s": rate,
            "hours_for_100k": TARGET_ROWS / rate / 3600}  # fmt: skip


COLOURS = {"black": (20, 20, 20), "white": (235, 235, 230), "red": (190, 30, 40),
           "blue": (40, 60, 160), "green": (40, 120, 60), "beige": (210, 190, 150)}  # fmt: skip
GARMENTS = {"shirt": ("tops", "shirts"), "dress": ("dresses", "dresses"),
            "jeans": ("bottoms", "jeans"), "jacket": ("outerwear", "jackets")}  # fmt: skip


def write_photo_catalogue(root: Path, rows: int, seed: int = 0) -> Path:
    """``root/train.csv`` of ``rows`` rows (two views per product) and ``root/images/*.jpg``:
    a garment-shaped block in the product's colour with a stripe pattern of its own on white,
    so that every image file is distinct (a product shop's photos, not copies of one file)."""
    from PIL import Image
    from tqdm import tqdm

    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names, colours, garments = list(COLOURS), list(COLOURS.values()), list(GARMENTS)
    with open(root / "train.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "text", "product_id", "category", "subcategory"])
        for row in tqdm(range(rows), desc="writing the catalogue", unit="image", mininterval=5):
            product, view = divmod(row, 2)
            colour, garment = product % len(names), (product // len(names)) % len(garments)
            width, height = [(300, 400), (256, 256)][view]
            pixels = np.full((height, width, 3), 255, dtype=np.uint8)
            top, left = height // 6, width // 4
            block = pixels[top : height - top, left : width - left]
            block[:] = colours[colour]
            period = 4 + product % 13  # the product's own stripes, plus per-image noise
            block[::period] //= 2
            block += rng.integers(0, 8, block.shape, dtype=np.uint8)
            name = f"p{product}_{view}.jpg"
            Image.fromarray(pixels).save(images / name, quality=90)
            writer.writerow([name, f"A {names[colour]} {garments[garment]} in cotton, style "
                             f"{product}.", f"SKU-{product:06d}",
                             *GARMENTS[garments[garment]]])  # fmt: skip
    return root / "train.csv"


def bench_catalogue_index(checkpoint: str, model_type: str | None, work: Path, rows: int,
                          threads: int) -> dict:  # fmt: skip
    """Wall time of the indexing command over a catalogue of ``rows`` rows, and its peak RSS."""
    table = write_photo_catalogue(work / "catalogue", rows)
    command = [sys.executable, "-m", "lavis_syncmask.search", "index", "--checkpoint", checkpoint,
               "--data", str(table), "--images", str(table.parent / "images"),
               "--out", str(work / "catalogue_index"), "--device", "cpu",
               "--threads", str(threads), "--quiet",
               *(["--model-type", model_type] if model_type else [])]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - start
    meta = json.loads((work / "catalogue_index" / "index.json").read_text(encoding="utf-8"))
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    return {"rows": meta["rows"], "wall_seconds": seconds, "feature_seconds": meta["seconds"],
            "rows_per_s": meta["rows"] / seconds, "peak_rss_mib": peak_mib}  # fmt: skip


def write_feature_index(folder: Path, rows: int, dim: int, views: int = 4) -> None:
    """An index of ``rows`` random unit features, ``views`` rows per product."""
    from lavis_syncmask.search.index import FEATURES_FILE, INDEX_VERSION, META_FILE, ROWS_FILE

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(rows, dim)).astype(np.float32)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    np.save(folder / FEATURES_FILE, features)
    with open(folder / ROWS_FILE, "w", encoding="utf-8") as handle:
        for row in range(rows):
            handle.write(json.dumps({"product": str(row // views), "text": ""}) + "\n")
    meta = {"version": INDEX_VERSION, "rows": rows, "dim": dim, "checkpoint": "", "data": ""}
    (folder / META_FILE).write_text(json.dumps(meta), encoding="utf-8")


def bench_query(search, work: Path, rows: int, queries: int, k: int = 10) -> dict:
    from lavis_syncmask.search.query import SearchIndex, text_query, top_products

    dim = int(search.model.vision_proj.out_features)
    write_feature_index(work / "big", rows, dim)
    index = SearchIndex.load(work / "big")
    for text in QUERIES:  # warm-up: first calls allocate
        top_products(index, text_query(search, text), k)
    encode_ms, total_ms = [], []
    for i in range(queries):
        text = f"{QUERIES[i % len(QUERIES)]} {i}"
        start = time.perf_counter()
        query = text_query(search, text)
        encoded = time.perf_counter()
        hits = top_products(index, query, k)
        done = time.perf_counter()
        assert len(hits) == k
        encode_ms.append(1000 * (encoded - start))
        total_ms.append(1000 * (done - start))
    return {
        "rows": rows,
        "median_ms": float(np.median(total_ms)),
        "p95_ms": float(np.percentile(total_ms, 95)),
        "encode_median_ms": float(np.median(encode_ms)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--products", type=int, default=150, help="synthetic train products to index"
    )
    parser.add_argument("--query-rows", type=int, default=TARGET_ROWS)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="torch threads while indexing")
    parser.add_argument(
        "--query-threads",
        type=int,
        default=1,
        help="torch threads while querying (one short text: more threads only add sync cost)",
    )
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--catalogue-rows", type=int, default=0,
                        help="also time the index command over a CSV catalogue of this many rows "
                             "(0: skip)")  # fmt: skip
    args = parse_with_smoke(parser, SMOKE)
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"cpu_count={os.cpu_count()}, torch threads={args.threads}, load average="
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"commit: {commit()}; config: {vars(args)}")
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        work = Path(tmp)
        search = tiny_search_model(args.checkpoint, work)
        index = bench_index(search, work, args.products)
        label = "measured" if index["rows"] >= TARGET_ROWS else "EXTRAPOLATED from the rate"
        print(f"index: {index['rows']} rows in {index['seconds']:.1f} s = "
              f"{index['rows_per_s']:.1f} rows/s; 100,000 rows: "
              f"{index['hours_for_100k']:.2f} h ({label})")  # fmt: skip
        if args.catalogue_rows:
            checkpoint = args.checkpoint or str(work / "tiny_random.pth")
            model_type = None if args.checkpoint else "tiny"
            big = bench_catalogue_index(checkpoint, model_type, work, args.catalogue_rows,
                                        args.threads)  # fmt: skip
            print(f"index command over a {big['rows']}-row CSV catalogue (measured): "
                  f"{big['wall_seconds']:.0f} s wall = {big['rows_per_s']:.1f} rows/s "
                  f"(features {big['feature_seconds']:.0f} s), peak RSS "
                  f"{big['peak_rss_mib']:.0f} MiB")  # fmt: skip
        torch.set_num_threads(args.query_threads)
        query = bench_query(search, work, args.query_rows, args.queries)
        verdict = "meets" if query["median_ms"] <= QUERY_TARGET_MS else "MISSES"
        print(f"text query over {query['rows']} items (k=10, no ITM): median "
              f"{query['median_ms']:.1f} ms, p95 {query['p95_ms']:.1f} ms (text encoding "
              f"{query['encode_median_ms']:.1f} ms); {verdict} the {QUERY_TARGET_MS:.0f} ms target")  # fmt: skip


if __name__ == "__main__":
    main()
