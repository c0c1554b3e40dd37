"""FashionIQ (text-guided image retrieval, benchmarks-and-data.md "FashionIQ"): a reader of the
release layout, the training triplet dataset, and the evaluation query / gallery datasets
under both gallery conventions (`original`, `val_union`).

Layout under the root::

    captions/cap.{dress,shirt,toptee}.{train,val,test}.json   [{"candidate", "target", "captions"}]
    image_splits/split.{dress,shirt,toptee}.{train,val,test}.json   [ASIN, ...]
    images/<ASIN>.png   (some releases .jpg; both are accepted)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from PIL import Image
from torch.utils.data import Dataset
from torch.utils.data.dataloader import default_collate

from lavis_syncmask.common.paths import require_file
from lavis_syncmask.data.images import load_rgb
from lavis_syncmask.data.processors import process_text
from lavis_syncmask.evaluation.tgir import GALLERIES, GalleryConvention, build_gallery

PathLike = str | os.PathLike[str]
Category = Literal["dress", "shirt", "toptee"]
CATEGORIES: tuple[str, ...] = get_args(Category)
Split = Literal["train", "val", "test"]
IMAGE_SUFFIXES = (".png", ".jpg")


def join_captions(captions: Sequence[str]) -> str:
    """The modification text of a triplet: its non-empty captions joined by " and ".

    Example:
        >>> join_captions(["is red", "has long sleeves"])
        'is red and has long sleeves'
    """
    return " and ".join(c.strip() for c in captions if c and c.strip())


def check_triplet(entry: Any, where: str) -> None:
    """Type-check one caption entry: ``candidate`` (and ``target`` when present) non-empty
    strings, ``captions`` a list of strings. A string given as ``captions`` would otherwise
    be joined letter by letter ("i and s and ...")."""
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be an object, got {type(entry).__name__}: {entry!r}")
    missing = [key for key in ("candidate", "captions") if key not in entry]
    if missing:
        raise ValueError(f"{where} lacks {missing}: {entry!r}")
    for key in ("candidate", "target"):
        if key in entry and (not isinstance(entry[key], str) or not entry[key]):
            raise ValueError(
                f"{where}: {key!r} must be a non-empty ASIN string, got "
                f"{type(entry[key]).__name__} {entry[key]!r}"
            )
    captions = entry["captions"]
    if not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
        raise ValueError(
            f"{where}: 'captions' must be a list of strings, got {type(captions).__name__} "
            f"{captions!r}"
        )


def _check(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {allowed}, got {value!r}")
    return value


class FashionIQ:
    """Read-only access to one FashionIQ release folder (JSON files cached once read)."""

    def __init__(self, root: PathLike, config_key: str = "root") -> None:
        self.root = require_file(Path(root), config_key)
        self.config_key = config_key
        self._json: dict[Path, Any] = {}

    def _load(self, path: Path) -> Any:
        if path not in self._json:
            require_file(path, self.config_key)
            try:
                self._json[path] = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path} is not valid JSON: {err}") from err
        return self._json[path]

    def triplets(self, category: Category, split: Split) -> list[dict[str, Any]]:
        """``cap.{category}.{split}.json``: ``[{"candidate", "target", "captions"}, ...]``."""
        _check(category, CATEGORIES, "category")
        path = self.root / "captions" / f"cap.{category}.{split}.json"
        entries = self._load(path)
        if not isinstance(entries, list):
            raise ValueError(f"{path} must hold a list of triplets, got {type(entries).__name__}")
        for i, entry in enumerate(entries):
            check_triplet(entry, f"{path}: entry {i}")
        return [dict(e) for e in entries]

    def split_ids(self, category: Category, split: Split) -> list[str]:
        """``split.{category}.{split}.json``: the ASINs of that split."""
        _check(category, CATEGORIES, "category")
        path = self.root / "image_splits" / f"split.{category}.{split}.json"
        asins = self._load(path)
        if not isinstance(asins, list):
            raise ValueError(f"{path} must hold a list of ASINs, got {type(asins).__name__}")
        for i, asin in enumerate(asins):
            if not isinstance(asin, str) or not asin:
                raise ValueError(f"{path}: entry {i} must be a non-empty ASIN string, got {asin!r}")
        return list(asins)

    def image_path(self, asin: str) -> Path:
        """``images/<asin>.png``, else ``images/<asin>.jpg``."""
        candidates = [self.root / "images" / f"{asin}{suffix}" for suffix in IMAGE_SUFFIXES]
        for path in candidates:
            if path.exists():
                return path
        raise FileNotFoundError(
            f"FashionIQ image {asin!r} not found: neither {candidates[0]} nor {candidates[1]} "
            f"exists (root from config key `{self.config_key}`)"
        )

    def load_image(self, asin: str) -> Image.Image:
        """The RGB image of ``asin``; a truncated file is an error (see data/images.py)."""
        return load_rgb(self.image_path(asin))

    def gallery(self, category: Category, convention: GalleryConvention) -> list[str]:
        """The val gallery ASINs of ``category``: ``original`` = every ASIN of the val split
        file; ``val_union`` = the val triplets' reference and target ASINs."""
        _check(convention, GALLERIES, "gallery")
        if convention == "original":
            return build_gallery(self.split_ids(category, "val"), [], convention)
        return build_gallery([], self.triplets(category, "val"), convention)


class _FashionIQDataset(Dataset):
    def __init__(self, root: PathLike | FashionIQ, vis_processor: Any, text_processor: Any):
        self.data = root if isinstance(root, FashionIQ) else FashionIQ(root)
        self.vis_processor, self.text_processor = vis_processor, text_processor
        self.data_files = [str(self.data.root)]

    def set_processors(self, vis_processor: Any, text_processor: Any) -> None:
        self.vis_processor, self.text_processor = vis_processor, text_processor

    def image(self, asin: str) -> Any:
        """The processed image (a PIL image when there is no processor)."""
        image = self.data.load_image(asin)
        return image if self.vis_processor is None else self.vis_processor(image)

    def text(self, captions: Sequence[str], where: str) -> str:
        joined = join_captions(captions)
        if not joined:
            raise ValueError(f"FashionIQ {where} has no non-empty caption")
        return process_text(self.text_processor, joined)[0]

    def collater(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        return default_collate(samples)


class FashionIQTripletDataset(_FashionIQDataset):
    """Training triplets of several categories: ``reference_image``, ``target_image``,
    ``text_input`` (the two captions joined), ``reference_id`` / ``target_id`` (ASINs) and
    ``category``. Batched: images ``(B, 3, H, W)``, the rest lists."""

    def __init__(
        self,
        root: PathLike | FashionIQ,
        categories: Sequence[Category] = CATEGORIES,
        split: Split = "train",
        vis_processor: Any = None,
        text_processor: Any = None,
    ) -> None:
        super().__init__(root, vis_processor, text_processor)
        self.entries: list[tuple[str, dict[str, Any]]] = []
        for category in categories:
            for i, triplet in enumerate(self.data.triplets(category, split)):
                if "target" not in triplet:
                    raise ValueError(f"cap.{category}.{split}.json entry {i} has no 'target'")
                self.entries.append((category, triplet))

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict[str, Any]:
        category, triplet = self.entries[index]
        return {
            "reference_image": self.image(str(triplet["candidate"])),
            "target_image": self.image(str(triplet["target"])),
            "text_input": self.text(triplet["captions"], f"{category} triplet {index}"),
            "reference_id": str(triplet["candidate"]),
            "target_id": str(triplet["target"]),
            "category": category,
        }


class FashionIQQueryDataset(_FashionIQDataset):
    """Evaluation queries of one category: ``reference_image``, ``text_input``,
    ``reference_id``, ``target_id``, ``index``, ``category``; ``triplets`` keeps the raw
    entries (for :func:`lavis_syncmask.evaluation.tgir.triplet_indices`)."""

    def __init__(
        self,
        root: PathLike | FashionIQ,
        category: Category,
        split: Split = "val",
        vis_processor: Any = None,
        text_processor: Any = None,
    ) -> None:
        super().__init__(root, vis_processor, text_processor)
        self.category = category
        self.triplets = self.data.triplets(category, split)
        missing = [i for i, t in enumerate(self.triplets) if "target" not in t]
        if missing:
            raise ValueError(
                f"cap.{category}.{split}.json: {len(missing)} entries have no 'target' "
                f"(first {missing[0]}); queries need targets"
            )
        self.reference_ids = [str(t["candidate"]) for t in self.triplets]
        self.target_ids = [str(t["target"]) for t in self.triplets]

    def __len__(self) -> int:
        return len(self.triplets)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {
            "reference_image": self.image(self.reference_ids[index]),
            "text_input": self.text(
                self.triplets[index]["captions"], f"{self.category} query {index}"
            ),
            "reference_id": self.reference_ids[index],
            "target_id": self.target_ids[index],
            "index": index,
            "category": self.category,
        }


class FashionIQGalleryDataset(_FashionIQDataset):
    """The val gallery of one category under ``convention``: items ``image``, ``image_id``
    (ASIN), ``index``; ``asins`` lists the gallery in order."""

    def __init__(
        self,
        root: PathLike | FashionIQ,
        category: Category,
        convention: GalleryConvention = "original",
        vis_processor: Any = None,
    ) -> None:
        super().__init__(root, vis_processor, None)
        self.category, self.convention = category, convention
        self.asins = self.data.gallery(category, convention)

    def __len__(self) -> int:
        return len(self.asins)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {
            "image": self.image(self.asins[index]),
            "image_id": self.asins[index],
            "index": index,
        }


class FashionIQEvalSet(Dataset):
    """The ``val`` split the ``fashioniq`` builder hands to LAVIS: iterating it yields the
    queries of every category in turn; an evaluation task reads ``queries[cat]`` and
    ``galleries[cat]``, and scores them under ``gallery`` (the convention) and
    ``exclude_reference`` (whether a query's reference image leaves its ranking), which label
    its numbers."""

    def __init__(
        self,
        root: PathLike | FashionIQ,
        categories: Sequence[Category] = CATEGORIES,
        convention: GalleryConvention = "original",
        vis_processor: Any = None,
        text_processor: Any = None,
        split: Split = "val",
        exclude_reference: bool = False,
    ) -> None:
        data = root if isinstance(root, FashionIQ) else FashionIQ(root)
        self.categories, self.gallery = list(categories), convention
        self.exclude_reference = exclude_reference
        self.queries = {
            c: FashionIQQueryDataset(data, c, split, vis_processor, text_processor)
            for c in categories
        }
        self.galleries = {
            c: FashionIQGalleryDataset(data, c, convention, vis_processor) for c in categories
        }
        self.data_files = [str(data.root)]
        self._order = [(c, i) for c in self.categories for i in range(len(self.queries[c]))]

    def set_processors(self, vis_processor: Any, text_processor: Any) -> None:
        for queries in self.queries.values():
            queries.set_processors(vis_processor, text_processor)
        for gallery in self.galleries.values():
            gallery.set_processors(vis_processor, None)  # gallery items carry no text

    def __len__(self) -> int:
        return len(self._order)

    def __getitem__(self, index: int) -> dict[str, Any]:
        category, position = self._order[index]
        return self.queries[category][position]

    def collater(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        return default_collate(samples)
