"""`load_model_and_preprocess` works offline once the plugin is imported."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lavis.models import load_model_and_preprocess
from model_fixtures import write_vocab
from PIL import Image

import lavis_syncmask  # noqa: F401  (registers the model and the processors)


@pytest.mark.parametrize("name", ["syncmask_fashion", "syncmask_fashion_tgir"])
def test_load_model_and_preprocess_tiny(name: str, tmp_path: Path, monkeypatch) -> None:
    write_vocab(tmp_path / "vocab")  # the tiny preset's `tokenizer: vocab`, under the data root
    monkeypatch.setenv("SYNCMASK_DATA_ROOT", str(tmp_path))
    model, vis, txt = load_model_and_preprocess(name, model_type="tiny", is_eval=True, device="cpu")
    assert not model.training
    image = vis["eval"](Image.new("RGB", (256, 256), (200, 30, 30))).unsqueeze(0)
    assert image.shape == (1, 3, 128, 128)
    text = txt["eval"]("  a red   shirt with long sleeves ")
    assert text == "a red shirt with long sleeves"
    if name == "syncmask_fashion":
        features = model.extract_features({"image": image, "text_input": [text]})
        assert features.multimodal_embeds.shape[0] == 1
        assert torch.isfinite(features.image_embeds_proj).all()


def test_missing_tiny_vocabulary_says_how_to_provide_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SYNCMASK_DATA_ROOT", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        load_model_and_preprocess("syncmask_fashion", model_type="tiny", is_eval=True)
