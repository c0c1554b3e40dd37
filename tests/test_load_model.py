"""`load_model_and_preprocess` right after install: `tiny` from any working directory (its
vocabulary ships in the package), and `base`'s initial weights the LAVIS way (the ALBEF URL
through `download_cached_file`, cached once), failing at once offline. All offline: a
pre-seeded cache or a file:// URL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from lavis.models import load_model_and_preprocess
from omegaconf import OmegaConf
from PIL import Image

import lavis_syncmask  # noqa: F401  (registers the model and the processors)
from lavis_syncmask.common.paths import CONFIG_DIR, TINY_VOCAB_DIR
from lavis_syncmask.common.weights import cache_path, resolve_weights
from lavis_syncmask.models.syncmask_fashion import SyncMaskFashion
from lavis_syncmask.synthetic.packaged_vocab import write_packaged_vocab


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, no data root, an empty torch hub cache."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNCMASK_DATA_ROOT", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path


@pytest.mark.parametrize("name", ["syncmask_fashion", "syncmask_fashion_tgir"])
def test_tiny_loads_from_any_directory(name: str, elsewhere: Path) -> None:
    model, vis, txt = load_model_and_preprocess(name, model_type="tiny", is_eval=True, device="cpu")
    assert not model.training
    assert len(model.tokenizer) == len(TINY_VOCAB_DIR.joinpath("vocab.txt").read_text().split())
    image = vis["eval"](Image.new("RGB", (256, 256), (200, 30, 30))).unsqueeze(0)
    assert image.shape == (1, 3, 128, 128)
    text = txt["eval"]("  a red   shirt with long sleeves ")
    assert text == "a red shirt with long sleeves"
    assert "[UNK]" not in model.tokenizer.tokenize(text)
    if name == "syncmask_fashion":
        features = model.extract_features({"image": image, "text_input": [text]})
        assert features.multimodal_embeds.shape[0] == 1
        assert torch.isfinite(features.image_embeds_proj).all()


def test_packaged_vocabulary_is_deterministic_and_current(tmp_path: Path) -> None:
    written = write_packaged_vocab(tmp_path)
    assert written.read_bytes() == (TINY_VOCAB_DIR / "vocab.txt").read_bytes(), (
        "regenerate it: python -m lavis_syncmask.cli.vocab --packaged"
    )


def test_base_preset_names_lavis_albef_checkpoint() -> None:
    import lavis

    albef = OmegaConf.load(Path(lavis.__file__).parent / "configs/models/albef_pretrain_base.yaml")
    ours = OmegaConf.load(CONFIG_DIR / "models" / "syncmask_fashion_base.yaml")
    assert ours.model.pretrained == albef.model.pretrained
    assert ours.model.tokenizer == "bert-base-uncased"


def test_uncached_url_offline_fails_at_once_naming_url_cache_and_key(elsewhere: Path) -> None:
    url = OmegaConf.load(CONFIG_DIR / "models" / "syncmask_fashion_base.yaml").model.pretrained
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as info:
        resolve_weights(url, "model.pretrained")
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert url in message and str(cache_path(url)) in message and "model.pretrained" in message
    assert str(elsewhere / "torch_home") in message


def test_base_load_offline_fails_before_building(elsewhere: Path) -> None:
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="ALBEF.pth"):
        load_model_and_preprocess("syncmask_fashion", model_type="base", is_eval=True)
    assert time.perf_counter() - start < 5.0  # no ViT-B / BERT built, no retries


def test_cached_url_is_used_without_network(elsewhere: Path) -> None:
    url = "https://example.invalid/weights/ALBEF.pth"
    cached = cache_path(url)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"placed by hand")
    assert resolve_weights(url, "model.pretrained") == cached


def _tiny_cfg() -> OmegaConf:
    cfg = OmegaConf.load(SyncMaskFashion.default_config_path("tiny")).model
    cfg.queue_size = 32
    return cfg


def test_file_url_goes_through_download_cached_file(elsewhere: Path) -> None:
    torch.manual_seed(0)
    source = SyncMaskFashion.from_config(_tiny_cfg())
    weights = elsewhere / "shared" / "albef_like.pth"
    weights.parent.mkdir()
    torch.save({"model": source.state_dict()}, weights)
    cfg = _tiny_cfg()
    cfg.pretrained = weights.as_uri()
    torch.manual_seed(1)
    model = SyncMaskFashion.from_config(cfg)
    assert cache_path(cfg.pretrained).is_file()  # copied into the torch hub cache
    for name in ("visual_encoder.patch_embed.proj.weight", "itm_head.weight"):
        assert torch.equal(model.state_dict()[name], source.state_dict()[name])


def test_missing_local_weights_name_the_key(elsewhere: Path) -> None:
    cfg = _tiny_cfg()
    cfg.pretrained = str(elsewhere / "nope.pth")
    with pytest.raises(FileNotFoundError, match="model.pretrained"):
        SyncMaskFashion.from_config(cfg)
