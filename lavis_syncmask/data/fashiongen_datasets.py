"""FashionGen datasets for pretraining (with the sync-precision ground truth of method.md
section 5 when a visibility sidecar exists) and for retrieval evaluation (the sample-100 and
full protocols of benchmarks-and-data.md). Category / subcategory recognition is in
`fashiongen_recognition.py`.

They follow LAVIS's dataset contract: built from `vis_processor` / `text_processor`, batched
with `collater(samples)`, processors swappable with `set_processors`.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np
import torch
from lavis.processors.base_processor import BaseProcessor
from lavis.processors.blip_processors import BlipImageEvalProcessor
from PIL import Image
from torch.utils.data import Dataset
from torch.utils.data.dataloader import default_collate

from lavis_syncmask.data.fashiongen import FashionGenH5, TextFields, field_keys
from lavis_syncmask.data.processors import process_text, tracks_offsets
from lavis_syncmask.data.visibility import VisibilitySidecar, resolve_sidecar
from lavis_syncmask.sampling.similarity import pair_similarity, tfidf_features

PathLike = str | os.PathLike[str]


def keeps_geometry(vis_processor: Any) -> bool:
    """Whether patch (r, c) of the 256 px image stays patch (r, c) after `vis_processor`:
    true for none / identity / a plain square resize, false for crops and flips."""
    if vis_processor is None or type(vis_processor) is BaseProcessor:
        return True
    declared = getattr(vis_processor, "keeps_geometry", None)
    if declared is not None:
        return bool(declared)
    return isinstance(vis_processor, BlipImageEvalProcessor)


class FashionGenRows(Dataset):
    """What every FashionGen dataset shares: the lazy reader, the row texts, image loading."""

    def __init__(
        self,
        h5_path: PathLike | FashionGenH5,
        vis_processor: Any = None,
        text_processor: Any = None,
        text_fields: TextFields = "description",
        config_key: str = "h5_path",
    ) -> None:
        field_keys(text_fields)  # validates the choice before touching the file
        # A path, or an open reader with FashionGenH5's interface (data/catalogue.py).
        is_path = isinstance(h5_path, (str, os.PathLike))
        self.reader = FashionGenH5(h5_path, config_key) if is_path else h5_path
        if len(self.reader) == 0:  # else a later step fails on the empty columns, unclearly
            raise ValueError(
                f"file {self.reader.path} (config key `{config_key}`) has no rows: its "
                f"'input_image' is empty"
            )
        self.text_fields = text_fields
        self.vis_processor, self.text_processor = vis_processor, text_processor
        self.data_files = [str(self.reader.path)]
        self.raw_texts = self.reader.texts(text_fields)
        self.product_ids_per_row = self.reader.product_ids()
        sizes = {len(self.reader), len(self.raw_texts), len(self.product_ids_per_row)}
        if len(sizes) != 1:
            raise ValueError(
                f"{self.reader.path}: image, text and product-id columns differ in length "
                f"({len(self.reader)}, {len(self.raw_texts)}, {len(self.product_ids_per_row)})"
            )

    def __len__(self) -> int:
        return len(self.raw_texts)

    def set_processors(self, vis_processor: Any, text_processor: Any) -> None:
        self.vis_processor, self.text_processor = vis_processor, text_processor

    def load_image(self, row: int) -> Any:
        """The processed image of ``row``; without a processor a ``(3, 256, 256)`` uint8 tensor."""
        pixels = self.reader.image(row)
        if self.vis_processor is None:
            return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()
        return self.vis_processor(Image.fromarray(pixels))

    def collater(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        return default_collate(samples)


def _index_of_sorted(values: list[str]) -> tuple[list[str], np.ndarray]:
    """Sorted distinct ``values`` and the ``(N,)`` int64 position of each value among them.
    (A dict, not ``np.unique``: long texts as a fixed-width numpy array would take gigabytes.)"""
    names = sorted(set(values))
    position = {name: i for i, name in enumerate(names)}
    return names, np.fromiter((position[v] for v in values), dtype=np.int64, count=len(values))


class FashionGenPretrainDataset(FashionGenRows):
    """One item per image row (image-text pairs for ITC / ITM / MLM / MIM).

    Item keys: ``image``, ``text_input`` (str), ``image_id`` (row), ``product_id``, ``text_id``
    (rank of the row's text among the sorted distinct texts: equal texts, equal ids),
    ``category`` and ``subcategory`` (rank among the file's sorted names); with a sidecar and
    an offset-preserving text processor also ``visible_spans`` (``[(start, end), ...]`` in
    ``text_input``) and, when the image keeps its geometry, ``described_patches`` ``(16, 16)``
    bool. Batched: tensors ``(B, ...)``; ``text_input`` and ``visible_spans`` stay lists;
    ``text_similarity`` ``(B, B)`` float32 is the TF-IDF cosine of the batch's texts.

    Args:
        sidecar: ``"auto"`` (the ``*_visibility.jsonl`` next to the h5, if present), a path,
            or None.
        described_patches: ``"auto"`` emits them only when :func:`keeps_geometry` holds for
            the image processor (random crops would misalign the 16x16 grid).
    """

    def __init__(
        self,
        h5_path: PathLike | FashionGenH5,
        vis_processor: Any = None,
        text_processor: Any = None,
        text_fields: TextFields = "description",
        sidecar: PathLike | None = "auto",
        described_patches: bool | Literal["auto"] = "auto",
        config_key: str = "h5_path",
    ) -> None:
        super().__init__(h5_path, vis_processor, text_processor, text_fields, config_key)
        if described_patches not in (True, False, "auto"):
            raise ValueError(
                f"described_patches must be true, false or 'auto', got {described_patches!r}"
            )
        self.described_patches = described_patches
        self.category_names, self.category_ids = _index_of_sorted(
            self.reader.strings("input_category")
        )
        self.subcategory_names, self.subcategory_ids = _index_of_sorted(
            self.reader.strings("input_subcategory")
        )
        distinct, self.text_ids = _index_of_sorted(self.raw_texts)
        # TF-IDF of the distinct texts, as the batch sampler computes it: the batch's
        # `text_similarity` lets the ITM loss skip near-duplicates whatever the sampler.
        self.text_features = tfidf_features(distinct)
        path = resolve_sidecar(sidecar, self.reader.path)
        self.sidecar = None
        if path is not None:
            texts = {key: self.reader.strings(key) for key in field_keys(text_fields)}
            self.sidecar = VisibilitySidecar(
                path,
                texts,
                expected_rows=len(self),
                h5_texts=(self.reader.path, self.reader.strings),
            )

    def _emit_patches(self) -> bool:
        if self.described_patches == "auto":
            return keeps_geometry(self.vis_processor)
        return bool(self.described_patches)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = int(index)
        item: dict[str, Any] = {
            "image": self.load_image(row),
            "image_id": row,
            "product_id": int(self.product_ids_per_row[row]),
            "text_id": int(self.text_ids[row]),
            "category": int(self.category_ids[row]),
            "subcategory": int(self.subcategory_ids[row]),
        }
        raw = self.raw_texts[row]
        if self.sidecar is not None and tracks_offsets(self.text_processor):
            spans = self.sidecar.visible_spans(row, self.text_fields)
            item["text_input"], item["visible_spans"] = process_text(
                self.text_processor, raw, spans
            )
            if self._emit_patches():
                grid = self.sidecar.described_patches(row, self.text_fields)
                item["described_patches"] = torch.from_numpy(grid)
        else:
            item["text_input"] = process_text(self.text_processor, raw)[0]
        return item

    def collater(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        spans = [s["visible_spans"] for s in samples if "visible_spans" in s]
        rest = [{k: v for k, v in s.items() if k != "visible_spans"} for s in samples]
        batch = default_collate(rest)
        ids = batch["text_id"].numpy()
        batch["text_similarity"] = torch.from_numpy(pair_similarity(self.text_features, ids, ids))
        if len(spans) == len(samples) and spans:
            batch["visible_spans"] = spans
        return batch

    def sampler_metadata(self) -> dict[str, Any]:
        """What the grouped batch sampler needs, without reading images: ``texts`` (raw row
        texts), ``product_ids`` ``(N,)`` int64, ``categories`` / ``subcategories`` ``(N,)`` str."""
        return {
            "texts": list(self.raw_texts),
            "product_ids": self.product_ids_per_row.copy(),
            "categories": np.asarray(self.reader.strings("input_category")),
            "subcategories": np.asarray(self.reader.strings("input_subcategory")),
        }


class FashionGenRetrievalDataset(FashionGenRows):
    """Evaluation images, one item per row: ``image``, ``index`` (position), ``image_id``
    (row), ``product_id``; plus the text side and lookup tables of the retrieval protocols.

    Attributes:
        text: one processed text per product, products in order of first row.
        img2txt: row -> ``[text index]``; txt2img: text index -> its product's first row (an
            int, as LAVIS's ``_report_metrics`` compares it with ``==``); text_rows: text
            index -> every row of the product (the full protocol counts any view as a hit).
        row_product: ``(N,)`` int64 text index of each row; product_rows: pid -> rows;
        product_subcategory: pid -> subcategory name; subcategory_products: name -> pids.
    """

    def __init__(
        self,
        h5_path: PathLike | FashionGenH5,
        vis_processor: Any = None,
        text_processor: Any = None,
        text_fields: TextFields = "description",
        config_key: str = "h5_path",
    ) -> None:
        super().__init__(h5_path, vis_processor, text_processor, text_fields, config_key)
        subcategories = self.reader.strings("input_subcategory")
        self.product_rows: dict[int, list[int]] = {}
        for row, pid in enumerate(self.product_ids_per_row.tolist()):
            self.product_rows.setdefault(int(pid), []).append(row)
        self.products = list(self.product_rows)
        text_of_product = {pid: i for i, pid in enumerate(self.products)}
        self.row_product = np.asarray(
            [text_of_product[int(p)] for p in self.product_ids_per_row], dtype=np.int64
        )
        self.img2txt = [[int(t)] for t in self.row_product]
        self.text_rows = [self.product_rows[pid] for pid in self.products]
        self.txt2img = [rows[0] for rows in self.text_rows]
        self.product_subcategory = {
            pid: subcategories[rows[0]] for pid, rows in self.product_rows.items()
        }
        self.subcategory_products: dict[str, list[int]] = {}
        for pid in self.products:
            self.subcategory_products.setdefault(self.product_subcategory[pid], []).append(pid)
        self._text_cache: tuple[Any, list[str]] | None = None

    @property
    def text(self) -> list[str]:
        """Processed product texts (recomputed when the text processor changes)."""
        if self._text_cache is None or self._text_cache[0] is not self.text_processor:
            texts = [
                process_text(self.text_processor, self.raw_texts[rows[0]])[0]
                for rows in self.text_rows
            ]
            self._text_cache = (self.text_processor, texts)
        return list(self._text_cache[1])

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = int(index)
        return {
            "image": self.load_image(row),
            "index": row,
            "image_id": row,
            "product_id": int(self.product_ids_per_row[row]),
        }
