"""The shipped project configs run end to end through the launchers on a small synthetic
catalogue: pretraining (one process and two gloo processes), then every downstream task through
`python -m lavis_syncmask.evaluate`, each writing its metrics.json."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = ROOT / "projects" / "syncmask"
# Small enough for seconds per run; 105 validation products so sample-100 has its 101.
TINY_RUN = [
    "run.max_epoch=1",
    "run.batch_size_train=8",
    "run.batch_size_eval=32",
    "run.sampler.group_size=2",
    "model.queue_size=64",
]


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lavis_syncmask.synthetic import generate_catalogue

    out = tmp_path_factory.mktemp("catalogue")
    generate_catalogue(out, 12, 105, seed=3, fashioniq_triplets=12, progress=False)
    return out


def launch(module: str, config: str, options: list[str], cwd: Path, data: Path, procs: int = 1):
    env = {**os.environ, "SYNCMASK_DATA_ROOT": str(data), "OMP_NUM_THREADS": "1"}
    prefix = [sys.executable]
    if procs > 1:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        prefix += ["-m", "torch.distributed.run", f"--nproc_per_node={procs}"]
        prefix += ["--master_addr=127.0.0.1", f"--master_port={port}"]
    cmd = [*prefix, "-m", module, "--cfg-path", str(PROJECTS / config), "--options", *options]
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def metrics_of(folder: Path) -> dict:
    files = sorted(folder.rglob("metrics.json"))
    assert files, f"no metrics.json under {folder}"
    return json.loads(files[-1].read_text())


@pytest.fixture(scope="module")
def pretrained(catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("pretrain")
    launch("lavis_syncmask.train", "pretrain_tiny.yaml", TINY_RUN, cwd, catalogue)
    checkpoints = sorted(cwd.glob("output/syncmask/pretrain_tiny/*/checkpoint_0.pth"))
    assert checkpoints, "pretraining wrote no checkpoint under the relative output dir"
    log = next(checkpoints[0].parent.glob("log.txt")).read_text()
    for key in ("loss_itc", "loss_mim", "word_sync_precision", "sampler_false_negatives"):
        assert key in log, key
    return checkpoints[0]


def test_pretrain_logs_terms_and_mask_statistics(pretrained: Path) -> None:
    config = (pretrained.parent / "config.yaml").read_text()
    assert "batch_sampler: semi_hard" in config


def test_two_process_gloo_pretraining(catalogue: Path, tmp_path: Path) -> None:
    launch("lavis_syncmask.train", "pretrain_tiny.yaml", TINY_RUN, tmp_path, catalogue, procs=2)
    (job,) = tmp_path.glob("output/syncmask/pretrain_tiny/*")
    assert (job / "checkpoint_0.pth").exists()
    assert "dist_backend: gloo" in (job / "config.yaml").read_text()


@pytest.mark.parametrize("protocol", ["sample100"])  # full: the one-vs-two-ranks test below
def test_retrieval_protocols(catalogue: Path, pretrained: Path, tmp_path: Path, protocol: str):
    options = [
        f"model.finetuned={pretrained}",  # trained with queue_size=64: the queue is skipped
        f"run.protocol={protocol}",
        "run.repeats=2",
        "run.n_queries=20",
    ]
    launch("lavis_syncmask.evaluate", "retrieval_tiny.yaml", options, tmp_path, catalogue)
    result = metrics_of(tmp_path / "output")
    assert result["protocol"] == protocol and result["checkpoint"] == str(pretrained)
    assert 0.0 <= result["metrics"]["r_mean"] <= 100.0
    if protocol == "sample100":
        assert result["seeds"] == [0, 1] and "r_mean_std" in result["metrics"]


def test_full_protocol_on_two_gloo_ranks_equals_one_process(
    catalogue: Path, pretrained: Path, tmp_path: Path
) -> None:
    options = [f"model.finetuned={pretrained}", "model.queue_size=64", "run.protocol=full"]
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    launch("lavis_syncmask.evaluate", "retrieval_tiny.yaml", options, one, catalogue)
    launch("lavis_syncmask.evaluate", "retrieval_tiny.yaml", options, two, catalogue, procs=2)
    result = metrics_of(one / "output")
    assert result["protocol"] == "full" and result["checkpoint"] == str(pretrained)
    single, sharded = result["metrics"], metrics_of(two / "output")["metrics"]
    assert 0.0 <= single["r_mean"] <= 100.0 and single["scoring"] == "itc+itm"
    assert sharded["n_images"] == single["n_images"] > 100
    for key, value in single.items():
        assert sharded[key] == pytest.approx(value), key


def test_recognition(catalogue: Path, pretrained: Path, tmp_path: Path) -> None:
    options = [f"model.init_from={pretrained}", "run.test_splits=[val]"]
    launch("lavis_syncmask.evaluate", "recognition_tiny.yaml", options, tmp_path, catalogue)
    result = metrics_of(tmp_path / "output")
    assert {"accuracy", "macro_f1"} <= set(result["metrics"])


@pytest.mark.parametrize("gallery", ["original", "val_union"])
def test_fashioniq(catalogue: Path, pretrained: Path, tmp_path: Path, gallery: str) -> None:
    options = [f"model.init_from={pretrained}", f"datasets.fashioniq.gallery={gallery}"]
    launch("lavis_syncmask.evaluate", "tgir_tiny.yaml", options, tmp_path, catalogue)
    result = metrics_of(tmp_path / "output")
    assert result["gallery"] == gallery and result["metrics"]["gallery"] == gallery
    # The reference image stays in the gallery by default, as FashionSAP and CLIP4Cir do.
    assert result["metrics"]["exclude_reference"] is False
    assert all(
        line.endswith(f"gallery={gallery} reference=kept")
        for line in result["metrics"]["table"].splitlines()
    )


def test_compute_sim_matrix_follows_lavis_contract(
    catalogue: Path, pretrained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from lavis.common.registry import registry
    from lavis.processors.blip_processors import BlipImageEvalProcessor
    from lavis.tasks.retrieval import RetrievalTask
    from omegaconf import OmegaConf
    from torch.utils.data import DataLoader

    from lavis_syncmask.data.fashiongen_datasets import FashionGenRetrievalDataset
    from lavis_syncmask.data.processors import SyncMaskTextProcessor
    from lavis_syncmask.models.syncmask_fashion import SyncMaskFashion

    cfg = OmegaConf.load(SyncMaskFashion.default_config_path("tiny")).model
    cfg.update(load_finetuned=True, finetuned=str(pretrained))  # the packaged tiny vocabulary
    cfg.queue_size = 64
    model = SyncMaskFashion.from_config(cfg).eval()
    dataset = FashionGenRetrievalDataset(
        catalogue / "fashiongen_256_256_validation.h5",
        BlipImageEvalProcessor(image_size=128),
        SyncMaskTextProcessor(),
    )
    loader = DataLoader(dataset, batch_size=64, collate_fn=dataset.collater)
    i2t, t2i = model.compute_sim_matrix(loader, SimpleNamespace(k_test=10))
    assert i2t.shape == (len(dataset), len(dataset.text)) and t2i.shape == i2t.shape[::-1]
    assert ((i2t > -100).sum(1) == 10).all() and ((t2i > -100).sum(1) == 10).all()
    # LAVIS's own metric code reads these matrices (it appends to <output_dir>/evaluate.txt).
    monkeypatch.setitem(registry.mapping["paths"], "output_dir", str(tmp_path))
    metrics = RetrievalTask._report_metrics(i2t, t2i, dataset.txt2img, dataset.img2txt)
    assert 0.0 <= metrics["r_mean"] <= 100.0
