"""Semi-hard negative grouped batch sampler (method.md section 4, [ours]).

`SemiHardBatchSampler` is a DataLoader `batch_sampler`. LAVIS only builds plain samplers and
never calls `set_epoch` on a batch sampler (lavis-notes.md), so this sampler shards across
ranks and reshuffles per epoch by itself; the project's runner calls `set_epoch`.

Every rank computes the same global list of batches for `(seed, epoch)` (independent of the
number of ranks) and keeps `batches[rank::num_replicas]`, truncated (or, with
`drop_last=False`, padded by wrapping around) so every rank gets `len(sampler)` batches.
Batch construction lives in `lavis_syncmask.sampling`; `false_negative_mask` is re-exported
here for the losses.

Example:
    >>> sampler = SemiHardBatchSampler(texts, product_ids, subcategories, categories, 64)
    >>> loader = DataLoader(dataset, batch_sampler=sampler)
    >>> sampler.set_epoch(epoch)  # before iterating each epoch
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import get_args

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from lavis_syncmask.sampling.false_negatives import false_negative_mask
from lavis_syncmask.sampling.packing import AnchorScope, Catalogue, pack_epoch
from lavis_syncmask.sampling.settings import SAMPLER_MODES, SIM_UPPER, SamplerMode
from lavis_syncmask.sampling.similarity import (
    Features,
    build_neighbours,
    deduplicate_texts,
    embedding_features,
    pair_similarity,
    tfidf_features,
)

__all__ = ["SamplerMode", "SemiHardBatchSampler", "false_negative_mask"]


def _codes(name: str, values: Sequence | np.ndarray, n: int) -> np.ndarray:
    """`(N,)` int64 codes `0..K-1` of the distinct values (ints or strings)."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per item), got shape {array.shape}")
    if len(array) != n:
        raise ValueError(f"{name} has {len(array)} entries but texts has {n}")
    return np.unique(array, return_inverse=True)[1].astype(np.int64).reshape(-1)


def _resolve_replicas(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    active = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if active else 1
    if rank is None:
        rank = dist.get_rank() if active else 0
    if num_replicas < 1:
        raise ValueError(f"num_replicas must be >= 1, got {num_replicas}")
    if not 0 <= rank < num_replicas:
        raise ValueError(f"rank must be in [0, {num_replicas - 1}], got {rank}")
    return int(num_replicas), int(rank)


def _refuse_degenerate(mode: str, batch_size: int, product: np.ndarray, group: np.ndarray) -> None:
    """Refuse catalogues that cannot give the batches `mode` promises: they would train on
    with every pair a false negative (and NaN similarity statistics) instead of failing."""
    products = len(np.unique(product))
    if products < 2:
        raise ValueError(
            f"the catalogue has a single product for all {len(product)} items: every pair in a "
            "batch would be a false negative; check the product ids (input_productID)"
        )
    if mode != "random" and products < batch_size:
        raise ValueError(
            f"mode {mode!r} never puts two items of one product in a batch, but the catalogue "
            f"has {products} products for batches of {batch_size}; lower the batch size or "
            "use run.batch_sampler: random"
        )
    if mode == "grouped" and len(np.unique(group)) < 2:
        raise ValueError(
            "mode 'grouped' groups items by subcategory, but the catalogue has a single "
            "subcategory, so its batches would be random ones; use run.batch_sampler: random "
            "(or semi_hard, which groups by text similarity)"
        )


class SemiHardBatchSampler(Sampler[list[int]]):
    """Batches of `batch_size / group_size` groups of similar, yet distinct, items.

    Args:
        texts: `(N,)` the text of every item (rows of one product share it).
        product_ids: `(N,)` product of every item; never two of one product in a batch
            (`semi_hard`, `grouped`).
        groups: `(N,)` grouping key (subcategory); group members come from the anchor's group.
        categories: `(N,)` fallback key when the group runs out.
        batch_size: items per batch, a multiple of `group_size` (`semi_hard`, `grouped`).
        mode: `semi_hard` (the method), `grouped` (ablation), `random` (baseline).
        group_size: items per group, anchor included.
        sim_lower, sim_upper: the semi-hard band; similarity >= `sim_upper` is a false negative.
        seed: with the epoch, fixes every batch.
        num_replicas, rank: default from `torch.distributed` if initialised, else 1 / 0.
        drop_last: drop the incomplete last batch (and, across ranks, the batches that do not
            divide evenly); otherwise keep it and pad ranks by wrapping around.
        refresh_every: `needs_refresh(epoch)` is True every that many epochs (0: never).
        num_neighbours: semi-hard neighbours kept per distinct text.
        anchor_scope: `group`: a batch's later anchors come from its first anchor's group
            (then category, then anywhere), so the whole batch is hard; `any`: every anchor
            is the next unused item of the epoch's permutation.
        random_epochs: the first that many epochs are plain random batches (`random` mode),
            the later ones `mode`'s. For a model trained from scratch: semi-hard batches made
            its seeds leave the chance-level ITC plateau later and end worse (the README's
            benchmark stability notes); 0 (the default) uses `mode` from the first epoch.
    """

    def __init__(
        self,
        texts: Sequence[str],
        product_ids: Sequence[int] | np.ndarray,
        groups: Sequence[str] | np.ndarray,
        categories: Sequence[str] | np.ndarray,
        batch_size: int,
        *,
        mode: SamplerMode = "semi_hard",
        group_size: int = 4,
        sim_lower: float = 0.2,
        sim_upper: float = SIM_UPPER,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        drop_last: bool = True,
        refresh_every: int = 0,
        num_neighbours: int = 32,
        anchor_scope: AnchorScope = "group",
        random_epochs: int = 0,
    ) -> None:
        super().__init__()
        self._check_settings(mode, batch_size, group_size, sim_lower, sim_upper, seed)
        self._check_options(anchor_scope, refresh_every, num_neighbours, random_epochs)
        n = len(texts)
        if n < batch_size:
            raise ValueError(f"dataset has {n} items, fewer than one batch of {batch_size}")
        product = _codes("product_ids", product_ids, n)
        group = _codes("groups", groups, n)
        category = _codes("categories", categories, n)
        _refuse_degenerate(mode, batch_size, product, group)
        self.num_replicas, self.rank = _resolve_replicas(num_replicas, rank)
        self.mode, self.batch_size, self.group_size = mode, batch_size, group_size
        self.sim_lower, self.sim_upper, self.seed = float(sim_lower), float(sim_upper), seed
        self.drop_last, self.refresh_every = drop_last, refresh_every
        self.num_neighbours, self.anchor_scope = num_neighbours, anchor_scope
        self.random_epochs = random_epochs
        self.epoch = 0
        self.num_items = n
        self.num_global_batches = n // batch_size if drop_last else math.ceil(n / batch_size)
        if len(self) == 0:
            raise ValueError(
                f"{n} items make {self.num_global_batches} batches of {batch_size}, "
                f"fewer than one per rank for {self.num_replicas} replicas"
            )
        self._unique_texts, text = deduplicate_texts(texts)
        self._catalogue = Catalogue(product, text, group, category, sim_upper=self.sim_upper)
        self._features: Features | None = None
        self._batches: tuple[int, list[list[int]]] | None = None
        self._stats: tuple[int, dict[str, float]] | None = None
        if mode == "semi_hard":
            self._set_features(tfidf_features(self._unique_texts))

    @staticmethod
    def _check_settings(
        mode: str, batch_size: int, group_size: int, sim_lower: float, sim_upper: float, seed: int
    ) -> None:
        if mode not in SAMPLER_MODES:
            raise ValueError(f"mode must be one of {SAMPLER_MODES}, got {mode!r}")
        if batch_size < 1 or group_size < 1:
            raise ValueError(
                f"batch_size and group_size must be >= 1, got {batch_size}, {group_size}"
            )
        if mode != "random" and batch_size % group_size:
            raise ValueError(
                f"batch_size ({batch_size}) must be a multiple of group_size ({group_size})"
            )
        if not -1.0 <= sim_lower < sim_upper <= 1.0:
            raise ValueError(
                f"need -1 <= sim_lower < sim_upper <= 1, got sim_lower={sim_lower}, "
                f"sim_upper={sim_upper}"
            )
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")

    @staticmethod
    def _check_options(
        anchor_scope: str, refresh_every: int, num_neighbours: int, random_epochs: int
    ) -> None:
        if anchor_scope not in get_args(AnchorScope):
            raise ValueError(
                f"anchor_scope must be one of {get_args(AnchorScope)}, got {anchor_scope!r}"
            )
        if refresh_every < 0 or num_neighbours < 1 or random_epochs < 0:
            raise ValueError(
                f"need refresh_every >= 0, num_neighbours >= 1 and random_epochs >= 0, "
                f"got {refresh_every}, {num_neighbours} and {random_epochs}"
            )

    # ------------------------------------------------------------------ similarity
    def _set_features(self, features: Features) -> None:
        cat = self._catalogue
        neighbours = None
        if self.mode == "semi_hard":
            pairs = np.unique(cat.group * len(self._unique_texts) + cat.text)
            pair_group, pair_text = np.divmod(pairs, len(self._unique_texts))
            bounds = np.flatnonzero(np.diff(pair_group)) + 1
            neighbours = build_neighbours(
                features,
                np.split(pair_text, bounds),
                sim_lower=self.sim_lower,
                sim_upper=self.sim_upper,
                num_neighbours=self.num_neighbours,
            )
        self._features = features
        self._catalogue = Catalogue(
            cat.product, cat.text, cat.group, cat.category, neighbours, features, self.sim_upper
        )
        self._batches = self._stats = None

    def _get_features(self) -> Features:
        if self._features is None:  # grouped / random only need it for statistics
            self._features = tfidf_features(self._unique_texts)
        return self._features

    def refresh_similarity(self, embeddings: np.ndarray | torch.Tensor) -> None:
        """Replace TF-IDF similarity by cosine similarity of `(N, D)` text embeddings.

        One embedding per item (the momentum model's ITC text embedding); rows sharing a text
        are averaged. Batches of the current epoch are rebuilt on the next iteration.
        """
        if isinstance(embeddings, torch.Tensor):
            embeddings = embeddings.detach().to("cpu", torch.float32).numpy()
        features = embedding_features(embeddings, self._catalogue.text, len(self._unique_texts))
        self._set_features(features)

    def needs_refresh(self, epoch: int) -> bool:
        """True when `refresh_every > 0`, `epoch > 0` and `epoch % refresh_every == 0`."""
        return self.refresh_every > 0 and epoch > 0 and epoch % self.refresh_every == 0

    # ------------------------------------------------------------------ batches
    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches `__iter__` yields (reshuffles)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def global_batches(self) -> list[list[int]]:
        """All ranks' batches of the current epoch, before sharding (cached per epoch)."""
        if self._batches is None or self._batches[0] != self.epoch:
            batches = pack_epoch(
                self._catalogue,
                mode="random" if self.epoch < self.random_epochs else self.mode,
                batch_size=self.batch_size,
                group_size=self.group_size,
                num_batches=self.num_global_batches,
                drop_last=self.drop_last,
                rng=np.random.default_rng([self.seed, self.epoch]),
                anchor_scope=self.anchor_scope,
            )
            self._batches = (self.epoch, batches)
        return self._batches[1]

    def _local_batches(self) -> list[list[int]]:
        batches = self.global_batches()
        total = len(self) * self.num_replicas
        if total > len(batches):  # drop_last=False: wrap around so every rank has len(self)
            batches = (batches * math.ceil(total / len(batches)))[:total]
        return batches[self.rank : total : self.num_replicas]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._local_batches():
            yield list(batch)

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_global_batches // self.num_replicas
        return math.ceil(self.num_global_batches / self.num_replicas)

    # ------------------------------------------------------------------ statistics
    def batch_statistics(self, batch: Sequence[int]) -> dict[str, float]:
        """Similarity and false negatives among the unordered pairs of one batch.

        Returns `mean_negative_similarity` (pairs of different products; NaN if none),
        `false_negatives` (pairs with the same product, the same text or similarity >=
        `sim_upper`), `same_group_fraction` (pairs sharing the group) and `num_pairs`.
        """
        rows = np.asarray(batch, dtype=np.int64).reshape(-1)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.num_items):
            raise ValueError(f"batch indices must be in [0, {self.num_items - 1}]")
        cat = self._catalogue
        sims = pair_similarity(self._get_features(), cat.text[rows], cat.text[rows])
        i, j = np.triu_indices(len(rows), 1)
        product, text, group = cat.product[rows], cat.text[rows], cat.group[rows]
        same_product = product[i] == product[j]
        false_neg = same_product | (text[i] == text[j]) | (sims[i, j] >= self.sim_upper)
        negative = sims[i, j][~same_product]
        return {
            "mean_negative_similarity": float(negative.mean()) if len(negative) else math.nan,
            "false_negatives": float(false_neg.sum()),
            "same_group_fraction": float((group[i] == group[j]).mean()) if len(i) else math.nan,
            "num_pairs": float(len(i)),
        }

    def epoch_statistics(self) -> dict[str, float]:
        """Averages of `batch_statistics` over this rank's batches of the current epoch."""
        if self._stats is None or self._stats[0] != self.epoch:
            per_batch = [self.batch_statistics(b) for b in self._local_batches()]
            stats = {}
            for key in ("mean_negative_similarity", "false_negatives", "same_group_fraction"):
                # A batch with no pair to measure gives NaN; the mean skips it, and a key no
                # batch could measure is left out rather than logged as NaN.
                finite = [s[key] for s in per_batch if not math.isnan(s[key])]
                if finite:
                    stats[key] = float(np.mean(finite))
            stats["false_negatives_per_batch"] = stats.pop("false_negatives")
            stats["num_batches"] = float(len(per_batch))
            stats["epoch"] = float(self.epoch)
            self._stats = (self.epoch, stats)
        return dict(self._stats[1])
