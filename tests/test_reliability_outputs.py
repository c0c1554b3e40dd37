"""Output folders and evaluation files under concurrency (issue 9): unique run folders, no
overwriting of results without --overwrite, atomic metrics.json with concurrent writers,
locked evaluate.txt appends, and provenance that names only the weights actually loaded."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import toy_plugin
from omegaconf import OmegaConf

from lavis_syncmask.cli.launcher import prepare, resolve_job_id
from lavis_syncmask.evaluation import write_metrics
from lavis_syncmask.tasks.common import EvaluationTask

WRITERS, WRITES = 4, 40


def _write_many(out: str, writer: int) -> None:
    config = {"padding": ["x" * 200] * 200}  # a large file widens the window for torn reads
    for i in range(WRITES):
        write_metrics(out, {"writer": writer, "i": i}, task="t", protocol=None, gallery=None,
                      seeds=None, checkpoint=None, data_files=[], config=config)  # fmt: skip


def test_concurrent_writers_never_crash_or_show_torn_json(tmp_path: Path) -> None:
    """One fixed temporary name made concurrent writers crash and readers see broken JSON."""
    _write_many(str(tmp_path), -1)
    torn, reads, done = [], [0], threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                json.loads((tmp_path / "metrics.json").read_text())
            except json.JSONDecodeError as err:
                torn.append(str(err))
            reads[0] += 1

    reader = threading.Thread(target=read)
    reader.start()
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=_write_many, args=(str(tmp_path), w)) for w in range(WRITERS)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    done.set()
    reader.join()
    assert [proc.exitcode for proc in procs] == [0] * WRITERS
    assert not torn and reads[0] > 0
    lines = [json.loads(line) for line in (tmp_path / "evaluate.txt").read_text().splitlines()]
    assert len(lines) == (WRITERS + 1) * WRITES  # every line whole, none lost
    assert not list(tmp_path.glob(".*.tmp"))


def test_run_folders_are_unique_without_job_id() -> None:
    ids = {resolve_job_id(None) for _ in range(20)}
    assert len(ids) == 20  # same second, different folders


def _args(out: Path, job_id: str, *options: str, overwrite: bool = False) -> argparse.Namespace:
    return argparse.Namespace(
        cfg_path=str(toy_plugin.RUN_CONFIG), options=[f"run.output_dir={out}", *options],
        job_id=job_id, imports=["toy_plugin"], overwrite=overwrite,
    )  # fmt: skip


def test_existing_results_are_never_overwritten_without_the_flag(tmp_path: Path) -> None:
    folder = tmp_path / "done"
    folder.mkdir()
    (folder / "config.yaml").write_text("run: {}\n")
    prepare(_args(tmp_path, "done"))  # a config alone is no result
    (folder / "metrics.json").write_text("{}")
    with pytest.raises(FileExistsError, match=r"done already holds results \(metrics\.json\)"):
        prepare(_args(tmp_path, "done"))
    prepare(_args(tmp_path, "done", overwrite=True))
    (folder / "checkpoint_0.pth").write_bytes(b"")
    prepare(_args(tmp_path, "done", f"run.resume_ckpt_path={folder / 'checkpoint_0.pth'}"))


def _task(model: dict, run: dict) -> EvaluationTask:
    cfg = SimpleNamespace(model_cfg=OmegaConf.create(model), run_cfg=OmegaConf.create(run))
    return EvaluationTask(cfg)


def test_provenance_names_only_loaded_weights(tmp_path: Path) -> None:
    """With load_finetuned=False metrics.json used to name the checkpoint it did not load."""
    tuned = str(tmp_path / "tuned.pth")
    assert _task({"finetuned": tuned, "load_finetuned": False}, {})._checkpoint() is None
    assert _task({"finetuned": tuned, "load_finetuned": True}, {})._checkpoint() == tuned
    pre = str(tmp_path / "albef.pth")
    not_loaded = {"finetuned": tuned, "load_finetuned": False, "pretrained": pre}
    assert _task(not_loaded, {})._checkpoint() == pre
    assert _task(not_loaded, {"checkpoint": tuned})._checkpoint() == tuned
