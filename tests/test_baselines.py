"""LAVIS's own ALBEF and BLIP built offline at tiny size (`lavis_syncmask.baselines`): their
own forward trains, the retrieval interface has the right shapes, the ITM head learns to rank
a matching pair above a shuffled one, and weights round-trip through a local checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from lavis.common.registry import registry
from model_fixtures import batch, write_vocab

from lavis_syncmask.baselines import build_baseline
from lavis_syncmask.models import inference
from lavis_syncmask.models.backbones import encode_image

ARCHS = ["albef_pretrain", "blip_pretrain", "albef_retrieval", "blip_retrieval"]
WORDS = ["red shirt", "navy dress", "black jacket", "white skirt", "green sweater", "pink trousers"]


@pytest.fixture(scope="module")
def vocab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_vocab(tmp_path_factory.mktemp("vocab"))


def tiny(arch: str, vocab: Path, **extra: object) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = {"arch": arch, "tokenizer": str(vocab), "image_size": 32, "queue_size": 12, **extra}
    return build_baseline(cfg)


def interface_outputs(model: torch.nn.Module, texts: list[str], images: torch.Tensor):
    feats, ids, att = inference.text_features(model, texts)
    states = model.itm_text_states(ids, att)
    tokens = encode_image(model.visual_encoder, images)
    return feats, states, att, tokens


@pytest.mark.parametrize("arch", ARCHS)
def test_builds_offline_and_serves_the_retrieval_interface(arch: str, vocab: Path) -> None:
    model = tiny(arch, vocab)
    assert isinstance(model, registry.get_model_class(arch))  # LAVIS's own registered class
    samples = batch(6, image_size=32)
    samples.update(epoch=0, iters=0, num_iters_per_epoch=10)
    if arch.endswith("pretrain"):
        out = model(samples)  # LAVIS's own forward and losses
        assert torch.isfinite(out.loss)
        out.loss.backward()
        assert model.itm_head.weight.grad is not None
    model.eval()
    feats, states, att, tokens = interface_outputs(model, samples["text_input"], samples["image"])
    assert feats.shape == (6, 64)  # the tiny preset's embed_dim
    assert torch.allclose(feats.norm(dim=-1), torch.ones(6), atol=1e-5)
    assert states.shape == (6, 64, 96) and tokens.shape == (6, 1 + 4, 96)
    assert model.itm_logits(states, att, tokens).shape == (6, 2)


@pytest.mark.parametrize("arch, steps", [("albef_pretrain", 60), ("blip_pretrain", 30)])
def test_itm_ranks_a_matching_pair_above_a_shuffled_one(arch: str, steps: int, vocab: Path):
    model = tiny(arch, vocab)
    images = torch.zeros(len(WORDS), 3, 32, 32)
    for i in range(len(WORDS)):  # six easily told apart images
        images[i, i % 3] = 2.0 if i < 3 else -2.0
    samples = {"image": images, "text_input": WORDS, "epoch": 1, "iters": 0}
    samples["num_iters_per_epoch"] = 1
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = model(samples).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        _, states, att, tokens = interface_outputs(model, WORDS, images)
        shuffled = torch.roll(torch.arange(len(WORDS)), 1)
        match = F.softmax(model.itm_logits(states, att, tokens), -1)[:, 1]
        other = F.softmax(model.itm_logits(states[shuffled], att[shuffled], tokens), -1)[:, 1]
    assert match.mean() > other.mean() + 0.1, (match, other)
    assert (match > other).float().mean() >= 0.8


def test_weights_round_trip_through_a_local_checkpoint(vocab: Path, tmp_path: Path) -> None:
    trained = tiny("albef_retrieval", vocab)
    with torch.no_grad():
        trained.itm_head.weight.add_(1.0)
    path = tmp_path / "albef.pth"
    torch.save({"model": trained.state_dict()}, path)
    loaded = tiny("albef_retrieval", vocab, finetuned=str(path), load_finetuned=True)
    assert torch.equal(loaded.itm_head.weight, trained.itm_head.weight)
    with pytest.raises(ValueError, match="nothing is downloaded"):
        tiny("albef_retrieval", vocab, finetuned="https://x/y.pth", load_finetuned=True)
    with pytest.raises(ValueError, match="unknown baseline model config keys"):
        tiny("blip_retrieval", vocab, queue_sise=12)
