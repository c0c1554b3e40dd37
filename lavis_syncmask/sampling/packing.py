"""One epoch of batches for the grouped / semi-hard batch sampler (method.md section 4, [ours]).

`pack_epoch` turns a random permutation into batches:

- `random`: consecutive slices of the permutation, no exclusion (the baseline);
- `grouped`: groups of `group_size` rows of the anchor's subcategory, no two rows of one
  product in a batch (the ablation);
- `semi_hard`: as `grouped`, but members are the anchor's most similar texts inside the
  semi-hard band first, and no two rows of a batch share a text or are near-duplicates
  (similarity >= `sim_upper`).

A batch's first anchor is the next unused row of the permutation; with `anchor_scope="group"`
its later anchors are the next unused rows of the first anchor's subcategory (then category,
then anywhere), so the whole batch, not only each group, holds similar items. Members are
consumed too, so an epoch uses each row about once. Members fall back from the band to the rest of the
subcategory, then the category, then anywhere. When no unused row fits (end of the epoch), a
batch is completed with rows already used this epoch; a final swap pass then puts rows left
out in their place where it can, so that no row appears twice and, with `drop_last=False`, each
row appears exactly once.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from lavis_syncmask.sampling.pools import EpochState, Pool, grouped_pools
from lavis_syncmask.sampling.settings import SAMPLER_MODES, SIM_UPPER, SamplerMode
from lavis_syncmask.sampling.similarity import Features, NeighbourTable, pair_similarity

__all__ = ["AnchorScope", "Catalogue", "Mode", "pack_epoch"]

Mode = SamplerMode  # kept as a public name
#: Where the anchors after a batch's first one come from: its subcategory, or anywhere.
AnchorScope = Literal["group", "any"]

# Random rows probed when completing a batch with already used rows.
_REUSE_PROBES = 64
# Earlier batches searched for a swap partner of a row left out at the end of the epoch, and
# the most exact conflict checks the swap pass may spend per epoch (bounds the worst case).
_SWAP_WINDOW = 64
_SWAP_BUDGET = 20_000


@dataclass(frozen=True)
class Catalogue:
    """Integer codes per row (`(N,)` int64 each) and what semi-hard packing needs."""

    product: np.ndarray
    text: np.ndarray
    group: np.ndarray
    category: np.ndarray
    neighbours: NeighbourTable | None = None  # required by semi_hard
    features: Features | None = None  # exact similarity, required by semi_hard
    sim_upper: float = SIM_UPPER

    def __len__(self) -> int:
        return len(self.product)


class _Packer:
    """Greedy batch builder for one epoch; all randomness comes from `rng`."""

    def __init__(
        self,
        cat: Catalogue,
        mode: Mode,
        group_size: int,
        anchor_scope: AnchorScope,
        rng: np.random.Generator,
    ) -> None:
        self.cat, self.mode, self.group_size, self.rng = cat, mode, group_size, rng
        self.anchor_scope = anchor_scope
        self.semi_hard = mode == "semi_hard"
        if self.semi_hard and (cat.neighbours is None or cat.features is None):
            raise ValueError("semi_hard packing needs the catalogue's neighbours and features")
        perm = rng.permutation(len(cat))
        self.state = EpochState(cat.product.tolist(), cat.text.tolist(), self.semi_hard, self._dups)
        self.anchors = Pool(perm.tolist())
        self.group_pools = grouped_pools(perm, cat.group)
        self.category_pools = grouped_pools(perm, cat.category)
        # Rows of each text in random order, so a neighbour text yields a random view.
        self.text_rows = perm[np.argsort(cat.text[perm], kind="stable")].tolist()
        self.text_ptr = np.concatenate([[0], np.cumsum(np.bincount(cat.text))]).tolist()
        self.group_of, self.category_of = cat.group.tolist(), cat.category.tolist()
        self.returned: list[int] = []  # rows taken back out of a batch by the exact check
        self.reuse: list[tuple[int, int]] = []  # (batch index, row) completed with a used row
        self.warned = False
        self.swap_budget = _SWAP_BUDGET

    def _dups(self, text: int) -> list[int]:
        table = self.cat.neighbours
        return table.dup_idx[table.dup_ptr[text] : table.dup_ptr[text + 1]].tolist()

    # ----------------------------------------------------------------- fast path
    def _draw_returned(self, check: Callable[[int], bool] | None = None) -> int:
        """A row the exact check took back out of a batch (nothing else revisits them), or -1."""
        state = self.state
        if not self.returned:
            return -1
        # A pool may have handed out a returned row meanwhile.
        self.returned = [r for r in self.returned if not state.used[r]]
        for i, row in enumerate(self.returned):
            if state.accepts(row) and (check is None or check(row)):
                return self.returned.pop(i)
        return -1

    def _draw_anchor(self, check: Callable[[int], bool] | None = None) -> int:
        row = self._draw_returned(check)
        return row if row >= 0 else self.anchors.draw(self.state, check)

    def _next_anchor(self, scope: list[Pool]) -> int:
        row = self._draw_returned()
        for pool in scope:
            if row >= 0:
                break
            row = pool.draw(self.state)
        return row

    def _group_pool(self, row: int) -> Pool:
        return self.group_pools[self.group_of[row]]

    def _category_pool(self, row: int) -> Pool:
        return self.category_pools[self.category_of[row]]

    def _band_members(self, anchor: int, need: int) -> int:
        """Add up to `need` unused rows of the anchor's semi-hard neighbours, most similar first."""
        table, state = self.cat.neighbours, self.state
        text = state.text[anchor]
        rows, ptr = self.text_rows, self.text_ptr
        for neighbour in table.band_idx[table.band_ptr[text] : table.band_ptr[text + 1]].tolist():
            if neighbour in state.blocked:
                continue
            for row in rows[ptr[neighbour] : ptr[neighbour + 1]]:
                if not state.used[row] and state.product[row] not in state.products:
                    state.add(row)
                    need -= 1
                    break
            if need == 0:
                break
        return need

    def _pool_members(self, pool: Pool, need: int) -> int:
        while need > 0:
            row = pool.draw(self.state)
            if row < 0:
                break
            self.state.add(row)
            need -= 1
        return need

    def _add_group(self, anchor: int, need: int) -> None:
        self.state.add(anchor)
        if self.semi_hard and need > 0:
            need = self._band_members(anchor, need)
        for pool in (self._group_pool(anchor), self._category_pool(anchor), self.anchors):
            if need == 0:
                return
            need = self._pool_members(pool, need)

    # ----------------------------------------------------------------- exact path
    def conflicts(self, row: int, batch: list[int]) -> np.ndarray:
        """`(len(batch),)` bool: which rows of `batch` may not share a batch with `row`."""
        cat = self.cat
        others = np.asarray(batch, dtype=np.int64)
        bad = cat.product[others] == cat.product[row]
        if self.semi_hard and len(others):
            sims = pair_similarity(cat.features, cat.text[[row]], cat.text[others])[0]
            bad |= (cat.text[others] == cat.text[row]) | (sims >= cat.sim_upper)
        return bad

    def _fits(self, row: int, batch: list[int]) -> bool:
        return row not in batch and not self.conflicts(row, batch).any()

    def _complete(self, batch_index: int, size: int) -> None:
        """Fill the batch with exactly checked rows: unused ones first, then used ones."""
        state = self.state
        while len(state.batch) < size:
            row = self._draw_anchor(lambda r: self._fits(r, state.batch))
            if row >= 0:
                state.add(row)
                continue
            row = self._reused_row(state.batch)
            self.reuse.append((batch_index, row))
            state.add_reused(row)

    def _reused_row(self, batch: list[int]) -> int:
        for row in self.rng.integers(0, len(self.cat), size=_REUSE_PROBES).tolist():
            if self._fits(row, batch):
                return row
        if not self.warned:
            warnings.warn(
                f"{self.mode} batch sampler: could not complete a batch without false negatives "
                "(too few distinct products); the batch contains some",
                RuntimeWarning,
                stacklevel=2,
            )
            self.warned = True
        taken = set(batch)
        return next(r for r in self.rng.permutation(len(self.cat)).tolist() if r not in taken)

    def _verify(self, batch_index: int, size: int) -> None:
        """Drop rows that the exact similarity check rejects, then refill the batch."""
        state = self.state
        rows = np.asarray(state.batch)
        texts = self.cat.text[rows]
        groups = self.cat.group[rows]
        if (groups == groups[0]).all() and self.cat.neighbours.dup_complete[texts].all():
            return  # the near-duplicate lists of this subcategory already cover every pair
        too_close = np.triu(
            pair_similarity(self.cat.features, texts, texts) >= self.cat.sim_upper, 1
        )
        if not too_close.any():
            return
        keep: list[int] = []
        for j in range(len(state.batch)):
            if not too_close[keep, j].any():
                keep.append(j)
        kept = [state.batch[j] for j in keep]
        removed = [r for r in state.batch if r not in set(kept)]
        self.returned.extend(r for r in removed if r not in state.reused)
        self.reuse = [(b, r) for b, r in self.reuse if b != batch_index or r in kept]
        state.restart(removed, kept)
        self._complete(batch_index, size)

    # ----------------------------------------------------------------- batches
    def build(self, batch_index: int, size: int) -> list[int]:
        state = self.state
        state.restart([], [])
        anchor = self._draw_anchor()
        scope = [self.anchors]
        if anchor >= 0 and self.anchor_scope == "group":
            # Later anchors share the first one's subcategory, so the whole batch is hard.
            scope = [self._group_pool(anchor), self._category_pool(anchor), self.anchors]
        while anchor >= 0:
            self._add_group(anchor, min(self.group_size, size - len(state.batch)) - 1)
            if len(state.batch) >= size:
                break
            anchor = self._next_anchor(scope)
        self._complete(batch_index, size)
        if self.semi_hard:
            self._verify(batch_index, size)
        return list(state.batch)

    def swap_in_leftovers(self, batches: list[list[int]]) -> None:
        """Replace reused rows by rows never placed, swapping with earlier batches if needed."""
        leftovers = [r for r in range(len(self.cat)) if not self.state.used[r]]
        self.swap_budget = _SWAP_BUDGET
        for b, reused_row in self.reuse:
            if not leftovers or self.swap_budget <= 0:
                return
            p = batches[b].index(reused_row)
            target = batches[b][:p] + batches[b][p + 1 :]
            for i, x in enumerate(leftovers):
                self.swap_budget -= 1
                if self._fits(x, target) or self._swap(batches, b, p, x, target):
                    if batches[b][p] == reused_row:
                        batches[b][p] = x
                    leftovers.pop(i)
                    break

    def _swap(self, batches: list[list[int]], b: int, p: int, x: int, target: list[int]) -> bool:
        """Move some row `y` of an earlier batch into slot `(b, p)` and `x` into its place."""
        for k in range(b - 1, max(-1, b - 1 - _SWAP_WINDOW), -1):
            self.swap_budget -= 1
            if self.swap_budget <= 0:
                return False
            bad = np.flatnonzero(self.conflicts(x, batches[k]))
            if len(bad) > 1:
                continue
            # x fits batch k once its single conflicting row (if any) moves out.
            for q in bad.tolist() if len(bad) else range(len(batches[k])):
                y = batches[k][q]
                self.swap_budget -= 1
                if self._fits(y, target):
                    batches[k][q], batches[b][p] = x, y
                    return True
        return False


def pack_epoch(
    catalogue: Catalogue,
    *,
    mode: Mode,
    batch_size: int,
    group_size: int,
    num_batches: int,
    drop_last: bool,
    rng: np.random.Generator,
    anchor_scope: AnchorScope = "group",
) -> list[list[int]]:
    """The global list of `num_batches` batches (row indices) for one epoch.

    Every batch has `batch_size` rows, except the last one when `drop_last` is False, which
    holds the `N - (num_batches - 1) * batch_size` remaining rows. Deterministic given `rng`.
    """
    n = len(catalogue)
    sizes = [batch_size] * num_batches
    if not drop_last and num_batches:
        sizes[-1] = n - (num_batches - 1) * batch_size
    if mode == "random":
        perm = rng.permutation(n)
        return [perm[i * batch_size : i * batch_size + s].tolist() for i, s in enumerate(sizes)]
    if mode not in SAMPLER_MODES:
        raise ValueError(f"mode must be one of {SAMPLER_MODES}, got {mode!r}")
    packer = _Packer(catalogue, mode, group_size, anchor_scope, rng)
    batches = [packer.build(i, s) for i, s in enumerate(sizes)]
    packer.swap_in_leftovers(batches)
    return batches
