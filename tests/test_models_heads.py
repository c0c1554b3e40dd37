"""Downstream heads hold only the encoders they use, and load a pretraining checkpoint through
the one strict loader, naming every key they drop and why."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from model_fixtures import batch, tiny_config, write_vocab
from omegaconf import OmegaConf

import lavis_syncmask  # noqa: F401  (registers the models)
from lavis_syncmask.common.paths import config_path
from lavis_syncmask.models.heads import SyncMaskClassifier, SyncMaskComposedRetrieval
from lavis_syncmask.models.syncmask_fashion import SyncMaskFashion

PRETRAINING_PARTS = ("_m.", "queue", "mim_", "global_step", "itm_head", "text_encoder.cls.")


@pytest.fixture(scope="module")
def vocab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_vocab(tmp_path_factory.mktemp("vocab"))


@pytest.fixture(scope="module")
def pretrained(vocab_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(1)
    model = SyncMaskFashion.from_config(tiny_config(vocab_dir))
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint_0.pth"
    torch.save({"model": model.state_dict(), "epoch": 0}, path)
    return path


def head_cfg(name: str, vocab_dir: Path, **extra: object) -> object:
    cfg = OmegaConf.load(config_path("models", f"syncmask_fashion_{name}_tiny.yaml")).model
    cfg.tokenizer, cfg.image_size = str(vocab_dir), 64
    for key, value in extra.items():
        cfg[key] = value
    return cfg


def build_cls(vocab_dir: Path, **extra: object) -> SyncMaskClassifier:
    torch.manual_seed(0)
    return SyncMaskClassifier.from_config(head_cfg("cls", vocab_dir, num_classes=3, **extra))


def build_tgir(vocab_dir: Path, **extra: object) -> SyncMaskComposedRetrieval:
    torch.manual_seed(0)
    return SyncMaskComposedRetrieval.from_config(head_cfg("tgir", vocab_dir, **extra))


def assert_every_parameter_learns(model: torch.nn.Module, loss: torch.Tensor) -> None:
    loss.backward()
    idle = [n for n, p in model.named_parameters() if p.grad is None]
    assert idle == []


def test_heads_hold_no_pretraining_state_and_every_parameter_learns(vocab_dir: Path) -> None:
    samples = batch(4, image_size=64)
    classifier = build_cls(vocab_dir)
    names = list(classifier.state_dict())
    assert not [n for n in names if any(part in n for part in PRETRAINING_PARTS)]
    assert not [n for n in names if n.startswith(("vision_proj", "text_proj", "temp"))]
    out = classifier({**samples, "label": torch.tensor([0, 1, 2, 0])})
    assert out.logits.shape == (4, 3)
    assert_every_parameter_learns(classifier, out.loss)

    tgir = build_tgir(vocab_dir)
    assert not [n for n in tgir.state_dict() if any(part in n for part in PRETRAINING_PARTS)]
    triplets = {"reference_image": samples["image"], "target_image": samples["image"].flip(0)}
    out = tgir({**triplets, "text_input": samples["text_input"], "target_id": ["a", "b", "c", "d"]})
    assert_every_parameter_learns(tgir, out.loss)


def test_init_from_names_each_dropped_key_and_why(
    vocab_dir: Path, pretrained: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = torch.load(pretrained, weights_only=True)["model"]
    with caplog.at_level(logging.INFO, logger="lavis_syncmask.common.checkpoint"):
        head = build_cls(vocab_dir, init_from=str(pretrained))
    key = "visual_encoder.patch_embed.proj.weight"
    assert torch.equal(head.state_dict()[key], source[key])
    log = caplog.text
    assert "visual_encoder_m.cls_token (momentum encoder: not used by the head)" in log
    assert "queue.image_queue (ITC queue: pretraining only)" in log
    assert "mim_decoder." in log and "itm_head.weight (ITM head: not used by the head)" in log
    assert "cls_head.0.weight keeps its initial value (head layer: trained from scratch)" in log

    tgir = build_tgir(vocab_dir, init_from=str(pretrained))
    assert torch.equal(tgir.vision_proj.weight, source["vision_proj.weight"])
    assert torch.equal(tgir.temp, source["temp"])


def test_init_from_a_mismatched_checkpoint_is_an_error(vocab_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    wider = SyncMaskFashion.from_config(tiny_config(vocab_dir, embed_dim=32))
    path = tmp_path / "wider.pth"
    torch.save(wider.state_dict(), path)  # before: dropped silently, head kept random weights
    with pytest.raises(ValueError, match=r"vision_proj.weight \(32, 96\) vs model \(64, 96\)"):
        build_tgir(vocab_dir, init_from=str(path))


class _NotAllowed:
    pass


def test_a_refused_pickle_names_the_file_on_every_loading_path(
    vocab_dir: Path, tmp_path: Path
) -> None:
    from lavis_syncmask.common.checkpoint import load_model_weights, restore_training_state

    path = tmp_path / "evil.pth"
    torch.save({"model": {"x": _NotAllowed()}}, path)
    message = rf"{path}.*cannot be loaded safely"
    model = SyncMaskFashion.from_config(tiny_config(vocab_dir))
    with pytest.raises(ValueError, match=message):
        build_cls(vocab_dir, init_from=str(path))
    with pytest.raises(ValueError, match=message):
        build_tgir(vocab_dir, load_finetuned=True, finetuned=str(path))
    with pytest.raises(ValueError, match=message):
        model.load_checkpoint(str(path))
    with pytest.raises(ValueError, match=message):
        load_model_weights(model, path, "--checkpoint")
    with pytest.raises(ValueError, match=message):
        SyncMaskFashion.from_config(tiny_config(vocab_dir, pretrained=str(path)))
    with pytest.raises(ValueError, match=message):
        from lavis_syncmask.common.checkpoint import load_checkpoint

        restore_training_state(load_checkpoint(path), model=model, optimizer=None, scaler=None)


def test_evaluation_loads_a_checkpoint_trained_with_another_queue_size(
    vocab_dir: Path, pretrained: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from lavis_syncmask.common.checkpoint import load_model_weights

    model = SyncMaskFashion.from_config(tiny_config(vocab_dir, queue_size=128))  # ckpt: 64
    with caplog.at_level(logging.INFO, logger="lavis_syncmask.common.checkpoint"):
        model.load_checkpoint(str(pretrained))
        load_model_weights(model, pretrained, "--checkpoint", skip=model.checkpoint_skips)
    source = torch.load(pretrained, weights_only=True)["model"]
    assert torch.equal(model.text_proj.weight, source["text_proj.weight"])
    assert "skipped queue.image_queue (ITC queue of (64, 64), this config's is (64, 128)" in (
        caplog.text
    )
    assert model.queue.size == 128
    with pytest.raises(ValueError, match=r"missing \['text_proj.bias'\]"):
        broken = {k: v for k, v in source.items() if k != "text_proj.bias"}
        torch.save(broken, pretrained.with_name("broken.pth"))
        model.load_checkpoint(str(pretrained.with_name("broken.pth")))
