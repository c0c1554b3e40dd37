"""FashionGen category / subcategory recognition data (CR / SCR, benchmarks-and-data.md):
per-image items with an integer label, under a label map that is fixed by the TRAIN file and
saved as JSON so every split, run and checkpoint agrees on what label 17 means.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from lavis_syncmask.data.fashiongen import FashionGenH5, TextFields
from lavis_syncmask.data.fashiongen_datasets import FashionGenRows
from lavis_syncmask.data.processors import process_text

PathLike = str | os.PathLike[str]
LabelKey = Literal["category", "subcategory"]
LABEL_KEYS: tuple[str, ...] = get_args(LabelKey)
#: What to do with an evaluation row whose label never occurs in train.
UnseenLabels = Literal["error", "drop"]
LABEL_COLUMNS = {"category": "input_category", "subcategory": "input_subcategory"}


def _check_label_key(label_key: str) -> str:
    if label_key not in LABEL_COLUMNS:
        raise ValueError(f"label_key must be one of {LABEL_KEYS}, got {label_key!r}")
    return LABEL_COLUMNS[label_key]


def default_label_map_path(train_h5: PathLike, label_key: LabelKey) -> Path:
    """``data/fashiongen_256_256_train.h5`` -> ``data/fashiongen_labels_subcategory.json``."""
    _check_label_key(label_key)
    return Path(train_h5).with_name(f"fashiongen_labels_{label_key}.json")


def _read_label_map(path: Path, label_key: str) -> dict[str, int]:
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        labels = stored["labels"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"label map {path} is not a {{'labels': [...]}} JSON object") from err
    if stored.get("label_key") != label_key:
        raise ValueError(
            f"label map {path} is for label_key={stored.get('label_key')!r}, not {label_key!r}"
        )
    if len(set(labels)) != len(labels):
        raise ValueError(f"label map {path} lists a label twice")
    return {str(name): i for i, name in enumerate(labels)}


def load_or_create_label_map(
    train_h5: PathLike, label_key: LabelKey, path: PathLike | None = None
) -> dict[str, int]:
    """Label name -> index, from ``path`` (default :func:`default_label_map_path`) when it
    exists; otherwise the sorted names of the train file, written to ``path`` first.

    Example:
        >>> load_or_create_label_map("data/train.h5", "category")  # doctest: +SKIP
        {'BAGS': 0, 'JACKETS & COATS': 1, ...}
    """
    column = _check_label_key(label_key)
    target = Path(path) if path is not None else default_label_map_path(train_h5, label_key)
    if target.exists():
        return _read_label_map(target, label_key)
    reader = FashionGenH5(train_h5, "build_info.storage.train")
    names = sorted(set(reader.strings(column)))
    payload = {"label_key": label_key, "source": Path(train_h5).name, "labels": names}
    # Written to a temporary name and renamed, so parallel ranks never read half a file.
    temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(temporary, target)
    except OSError as err:
        raise OSError(
            f"cannot write the label map {target} ({err}); set the config key `label_map` to a "
            "writable path"
        ) from err
    return {name: i for i, name in enumerate(names)}


class FashionGenRecognitionDataset(FashionGenRows):
    """Per-image recognition items: ``image``, ``text_input``, ``label`` (int), ``image_id``
    (row). Batched: ``label`` ``(B,)`` int64.

    Args:
        label_map: name -> index, normally from :func:`load_or_create_label_map`.
        unseen_labels: ``"error"`` (default) refuses rows whose label is not in the map;
            ``"drop"`` leaves them out (their rows are listed in ``dropped_rows``).
    """

    def __init__(
        self,
        h5_path: PathLike,
        label_map: Mapping[str, int],
        vis_processor: Any = None,
        text_processor: Any = None,
        text_fields: TextFields = "description",
        label_key: LabelKey = "subcategory",
        unseen_labels: UnseenLabels = "error",
        config_key: str = "h5_path",
    ) -> None:
        column = _check_label_key(label_key)
        if unseen_labels not in get_args(UnseenLabels):
            raise ValueError(f"unseen_labels must be 'error' or 'drop', got {unseen_labels!r}")
        super().__init__(h5_path, vis_processor, text_processor, text_fields, config_key)
        self.label_key, self.label_map = label_key, dict(label_map)
        names = self.reader.strings(column)
        unseen = sorted(set(names) - self.label_map.keys())
        if unseen and unseen_labels == "error":
            raise ValueError(
                f"{self.reader.path}: {len(unseen)} {label_key} label(s) never seen in train: "
                f"{unseen[:10]}; set `unseen_labels: drop` to leave those rows out"
            )
        known = np.asarray([name in self.label_map for name in names], dtype=bool)
        self.rows = np.flatnonzero(known)
        self.dropped_rows = np.flatnonzero(~known)
        self.labels = np.asarray([self.label_map[names[r]] for r in self.rows], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = int(self.rows[index])
        return {
            "image": self.load_image(row),
            "text_input": process_text(self.text_processor, self.raw_texts[row])[0],
            "label": int(self.labels[index]),
            "image_id": row,
        }
