"""The full retrieval protocol sharded over 2 gloo processes gives one process's metrics, while
each rank's ITM scorer only ever sees its own image rows (issue 10, item 5)."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lavis_syncmask.evaluation import full_retrieval
from lavis_syncmask.evaluation.sharded import gather_rows, shard_range, sharded_full_retrieval

N_ROWS, N_TEXTS, WIDTH, K = 61, 23, 16, 12  # odd sizes: the shards differ in length


def _problem() -> tuple[torch.Tensor, torch.Tensor, np.ndarray, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    row_product = np.concatenate([np.arange(N_TEXTS), np.arange(N_ROWS - N_TEXTS) % N_TEXTS])
    texts = torch.nn.functional.normalize(torch.randn(N_TEXTS, WIDTH, generator=gen), dim=-1)
    images = texts[row_product] + 0.9 * torch.randn(N_ROWS, WIDTH, generator=gen)
    images = torch.nn.functional.normalize(images, dim=-1)
    itm = torch.rand(N_ROWS, N_TEXTS, generator=gen, dtype=torch.float64)  # a stand-in ITM
    itm[torch.arange(N_ROWS), torch.as_tensor(row_product)] += 0.3
    return images, texts, row_product, itm


def _worker(rank: int, world: int, port: int, queue: mp.Queue) -> None:
    # Forked from a parent whose OpenMP pool may be running: entering it again from the child
    # can hang (GNU libgomp is not fork-safe). One thread keeps torch off that pool.
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        images, texts, row_product, itm = _problem()
        own = shard_range(N_ROWS)
        seen: list[int] = []

        def score(rows: torch.Tensor, text_index: torch.Tensor) -> torch.Tensor:
            seen.extend(rows.tolist())
            return itm[rows, text_index]

        # Each rank contributes only its own rows' features, as the task does.
        gathered = gather_rows(images[own.start : own.stop])
        metrics = sharded_full_retrieval(
            gathered,
            texts,
            row_product,
            k_test=K,
            itm_i2t=score,
            itm_t2i=lambda t, r: score(r, t),
            itm_batch_size=7,
        )
        queue.put((rank, metrics, torch.equal(gathered, images), sorted(set(seen)), list(own)))
    finally:
        dist.destroy_process_group()


def test_shard_range_covers_every_index_once() -> None:
    for n in (0, 1, 5, 61):
        for world in (1, 2, 3, 8):
            parts = [list(shard_range(n, r, world)) for r in range(world)]
            assert sum(parts, []) == list(range(n))
            assert max(map(len, parts)) - min(map(len, parts)) <= 1
    with pytest.raises(ValueError, match="rank"):
        shard_range(5, 2, 2)


def test_one_process_sharded_equals_full_retrieval() -> None:
    images, texts, row_product, itm = _problem()
    kwargs = {"k_test": K, "itm_i2t": lambda r, t: itm[r, t], "itm_t2i": lambda t, r: itm[r, t]}
    assert sharded_full_retrieval(images, texts, row_product, **kwargs) == full_retrieval(
        images, texts, row_product, **kwargs
    )


def test_two_gloo_ranks_give_one_process_metrics() -> None:
    images, texts, row_product, itm = _problem()
    expected = full_retrieval(
        images,
        texts,
        row_product,
        k_test=K,
        itm_i2t=lambda r, t: itm[r, t],
        itm_t2i=lambda t, r: itm[r, t],
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # fork: the workers start in milliseconds (spawn re-imports LAVIS in each, ~15 s).
    context = mp.get_context("fork")
    queue = context.Queue()
    procs = [context.Process(target=_worker, args=(r, 2, port, queue)) for r in range(2)]
    for proc in procs:
        proc.start()
    results = sorted(queue.get(timeout=120) for _ in procs)
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    for _rank, metrics, gathered_ok, seen, own in results:
        assert gathered_ok
        assert metrics == expected
        assert seen and set(seen) <= set(own)  # ITM touched only this rank's rows
    assert expected["scoring"] == "itc+itm" and expected["n_images"] == N_ROWS
