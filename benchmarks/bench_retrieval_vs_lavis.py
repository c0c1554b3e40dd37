"""The full FashionGen retrieval protocol of `syncmask_retrieval` against LAVIS's own
`compute_sim_matrix` (lavis.models.albef_models), on the same tiny model and the same synthetic
validation rows, side by side in one run.

LAVIS builds dense (images x texts) and (texts x images) score matrices and keeps every image's
ViT tokens in float32; ours streams the ITC top-k (O(N x k)) and caches ViT tokens in float16.
Each method runs in a fresh subprocess; memory is the peak resident-set growth (VmHWM after a
reset via /proc/self/clear_refs) from a built model and dataset to the end of the protocol.

    python benchmarks/bench_retrieval_vs_lavis.py --data-dir data/bench20k --rows 20000

Target (issue 5): peak memory ours / LAVIS <= 0.25, time ours / LAVIS <= 1.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from smoke import parse_with_smoke

SMOKE = {"rows": 42, "k": 10, "threads": 1}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


class _TextEncoderView:
    """Our BERT under the calls LAVIS's ALBEF `compute_sim_matrix` makes on `text_encoder`."""

    def __init__(self, bert: Any) -> None:
        self.bert = bert

    def forward_text(self, tok: Any) -> Any:
        return self.bert(tok.input_ids, attention_mask=tok.attention_mask, mode="text")

    def __call__(self, ids, attention_mask, encoder_hidden_states, encoder_attention_mask, **kw):
        return self.bert(
            ids,
            attention_mask=attention_mask,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            return_dict=True,
            mode="multimodal",
        )


class LavisView:
    """Our model under the attribute names LAVIS's ALBEF retrieval code reads."""

    def __init__(self, model: Any) -> None:
        self.tokenizer, self.device = model.tokenizer, model.device
        self.visual_encoder, self.vision_proj = model.visual_encoder, model.vision_proj
        self.text_proj, self.itm_head = model.text_proj, model.itm_head
        self.text_encoder = _TextEncoderView(model.text_encoder.bert)


def load(data_dir: str, vocab: str, checkpoint: str | None, rows: int):
    from lavis.common.registry import registry
    from lavis.processors.blip_processors import BlipImageEvalProcessor
    from omegaconf import OmegaConf

    import lavis_syncmask  # noqa: F401
    from lavis_syncmask.data.fashiongen_datasets import FashionGenRetrievalDataset
    from lavis_syncmask.data.processors import SyncMaskTextProcessor
    from lavis_syncmask.models.syncmask_fashion import SyncMaskFashion

    cfg = OmegaConf.load(SyncMaskFashion.default_config_path("tiny")).model
    cfg.tokenizer = vocab
    if checkpoint:
        cfg.load_finetuned, cfg.finetuned = True, checkpoint
    torch.manual_seed(0)
    model = registry.get_model_class("syncmask_fashion").from_config(cfg).eval()
    dataset = FashionGenRetrievalDataset(
        Path(data_dir) / "fashiongen_256_256_validation.h5",
        BlipImageEvalProcessor(image_size=cfg.image_size),
        SyncMaskTextProcessor(),
    )
    if rows and rows < len(dataset):
        raise SystemExit(f"the catalogue has {len(dataset)} rows; use it whole or regenerate")
    return model, dataset


def run_method(method: str, args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    model, dataset = load(args.data_dir, args.vocab, args.checkpoint, args.rows)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=64, collate_fn=dataset.collater, num_workers=0
    )
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS counter
    base = _status_kib("VmRSS")
    start = time.perf_counter()
    with torch.no_grad():
        if method == "lavis":
            from lavis.common.registry import registry
            from lavis.models.albef_models import compute_sim_matrix
            from lavis.tasks.retrieval import RetrievalTask

            registry.register_path("output_dir", tempfile.mkdtemp())  # its evaluate.txt
            dataset.image = list(range(len(dataset)))  # LAVIS sizes its matrices by `.image`
            i2t, t2i = compute_sim_matrix(LavisView(model), loader, k_test=args.k)
            metrics = RetrievalTask._report_metrics(i2t, t2i, dataset.txt2img, dataset.img2txt)
        else:
            from omegaconf import OmegaConf

            from lavis_syncmask.tasks.retrieval import SyncMaskRetrievalTask

            run = {"protocol": "full", "k_test": args.k, "batch_size_eval": 64}
            cfg = OmegaConf.create({"run_cfg": run, "model_cfg": {}})
            task = SyncMaskRetrievalTask(cfg, protocol="full")
            metrics = task.run_protocol(model, dataset)["metrics"]
    seconds = time.perf_counter() - start
    peak_mib = (_status_kib("VmHWM") - base) / 1024
    keep = ("txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10", "r_mean")
    keep += ("i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10")
    return {
        "seconds": seconds,
        "peak_mib": peak_mib,
        "rows": len(dataset),
        "texts": len(dataset.text),
        "metrics": {k: float(v) for k, v in metrics.items() if k in keep},
    }


def run_child(method: str, args: argparse.Namespace) -> dict[str, Any]:
    """`run_method` in a fresh process, so one method's memory never helps the other."""
    cmd = [sys.executable, __file__, "--method", method, "--data-dir", str(args.data_dir)]
    cmd += ["--vocab", args.vocab, "--k", str(args.k), "--threads", str(args.threads)]
    cmd += ["--rows", "0"] + (["--checkpoint", args.checkpoint] if args.checkpoint else [])
    from lavis_syncmask.common.processes import run_group  # the child skips it

    out = run_group(cmd)
    if out.returncode:
        raise SystemExit(f"{method} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(args: argparse.Namespace) -> None:
    data = Path(args.data_dir)
    if not (data / "fashiongen_256_256_validation.h5").exists():
        from lavis_syncmask.synthetic import generate_catalogue

        # About 3.5 views per product; a few training products keep the generator happy.
        val = max(1, args.rows * 2 // 7)
        if args.smoke:  # no FashionIQ tree: this benchmark reads the validation h5 only
            generate_catalogue(data, 4, val, seed=0, fashioniq_triplets=0, progress=False)
        else:
            generate_catalogue(data, 200, val, seed=0, progress=True)
    from lavis_syncmask.common.processes import run_group

    commit = run_group(["git", "rev-parse", "--short", "HEAD"])
    print(f"machine: {platform.platform()}, {args.threads} torch threads, cpu")
    print(f"commit: {commit.stdout.strip() or 'unknown'}; k_test={args.k}; data={data}")
    results = {}
    whole = argparse.Namespace(**{**vars(args), "rows": 0})  # as a child: the catalogue whole
    for method in ("ours", "lavis"):
        # Under --smoke in this process: a fresh child per method costs a whole `import lavis`.
        results[method] = run_method(method, whole) if args.smoke else run_child(method, args)
        r = results[method]
        print(
            f"{method:5s}: {r['rows']} rows x {r['texts']} texts, {r['seconds']:.1f} s, "
            f"peak +{r['peak_mib']:.0f} MiB, metrics {r['metrics']}"
        )
    ours, lavis = results["ours"], results["lavis"]
    print(
        f"ratio ours/LAVIS: memory {ours['peak_mib'] / lavis['peak_mib']:.3f} (target <= 0.25), "
        f"time {ours['seconds'] / lavis['seconds']:.3f} (target <= 1)"
    )
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="data/bench20k")
    parser.add_argument("--rows", type=int, default=20000, help="validation rows to generate")
    parser.add_argument("--vocab", default=None, help="default: DATA_DIR/vocab")
    parser.add_argument("--checkpoint", default=None, help="tiny checkpoint; default random init")
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--method", choices=["ours", "lavis"], help=argparse.SUPPRESS)
    args = parse_with_smoke(parser, SMOKE)
    if args.method:  # child process
        args.vocab = args.vocab or str(Path(args.data_dir) / "vocab")
        print(json.dumps(run_method(args.method, args)))
        return
    with tempfile.TemporaryDirectory() as scratch:
        if args.smoke:  # a scratch catalogue, never the real benchmark's folder
            args.data_dir = scratch
        args.vocab = args.vocab or str(Path(args.data_dir) / "vocab")
        compare(args)


if __name__ == "__main__":
    main()
