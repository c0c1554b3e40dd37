"""Build a search index: the ITC image feature of every row of a data source, written as it is
computed (memory O(N x d) for the features, never the images), plus what a query prints and
draws. An index is a folder:

- ``features.npy``: ``(N, d)`` float32, L2-normalised ITC image features (``vision_proj`` of
  the ViT [CLS], as in the retrieval protocols);
- ``rows.jsonl``: per row ``{"product": id, "text": ...}``;
- ``index.json``: the checkpoint, the data source (absolute paths), N, d, the model type.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from lavis_syncmask.models.backbones import encode_image
from lavis_syncmask.search.model import SearchModel
from lavis_syncmask.search.source import ImageRows, product_keys, row_texts

FEATURES_FILE = "features.npy"
ROWS_FILE = "rows.jsonl"
META_FILE = "index.json"
INDEX_VERSION = 1


@torch.no_grad()
def image_itc_features(model: Any, images: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` -> ``(B, d)`` normalised ITC features."""
    tokens = encode_image(model.visual_encoder, images.to(model.device))
    return F.normalize(model.vision_proj(tokens[:, 0]), dim=-1)


def build_index(
    search: SearchModel,
    reader: Any,
    out: str | os.PathLike[str],
    data: dict[str, str | None],
    batch_size: int = 64,
    workers: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Index every row of ``reader`` into folder ``out``; returns the ``index.json`` content.
    ``data``: how to reopen the source (``{"data": path, "images": folder or None}``)."""
    folder = Path(out).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    n, dim = len(reader), int(search.model.vision_proj.out_features)
    with open(folder / ROWS_FILE, "w", encoding="utf-8") as rows_file:
        for pid, text in zip(product_keys(reader), row_texts(reader)):
            rows_file.write(json.dumps({"product": pid, "text": text}) + "\n")
    features = np.lib.format.open_memmap(
        folder / FEATURES_FILE, mode="w+", dtype=np.float32, shape=(n, dim)
    )
    loader = DataLoader(
        ImageRows(reader, search.vis_processor), batch_size=batch_size, num_workers=workers
    )
    start = time.perf_counter()
    for rows, images in tqdm(loader, disable=not progress, desc="index images", unit="batch"):
        features[rows.numpy()] = image_itc_features(search.model, images).cpu().numpy()
    seconds = time.perf_counter() - start
    features.flush()
    del features  # close the memmap before the metadata says the index is complete
    meta = {
        "version": INDEX_VERSION,
        "checkpoint": str(search.checkpoint),
        "model_type": search.model_type,
        "rows": n,
        "dim": dim,
        **{k: (str(Path(v).expanduser().resolve()) if v else None) for k, v in data.items()},
        "seconds": round(seconds, 3),
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta
