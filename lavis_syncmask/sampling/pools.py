"""Bookkeeping for building one epoch of batches (method.md section 4, [ours]).

`EpochState` records which rows are used this epoch and what the batch under construction
excludes (its products, and in semi-hard mode its texts and their near-duplicates). `Pool` is a
shuffled list of rows read front to back, skipping used rows, which gives "draw without
replacement" in amortised O(1) per row. Plain Python containers are used on purpose: the
packer touches one row at a time, where numpy scalar access would cost more than the work.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["EpochState", "Pool", "grouped_pools"]

# Unused rows a draw examines before giving up; rows the batch excludes are few, so a
# longer scan only happens when almost everything left conflicts with the batch.
SCAN_LIMIT = 256


class EpochState:
    """Rows used this epoch, and the batch under construction with what it excludes."""

    def __init__(
        self,
        product: list[int],
        text: list[int],
        semi_hard: bool,
        dups: Callable[[int], list[int]],
    ) -> None:
        self.product, self.text, self.semi_hard, self.dups = product, text, semi_hard, dups
        self.used = bytearray(len(product))
        self.batch: list[int] = []
        self.reused: set[int] = set()  # rows of this batch that were already used earlier
        self.products: set[int] = set()
        self.blocked: set[int] = set()  # texts this batch excludes (semi_hard only)

    def accepts(self, row: int) -> bool:
        """Whether `row` may join the batch by the fast (neighbour-list) rules."""
        if self.product[row] in self.products:
            return False
        return not (self.semi_hard and self.text[row] in self.blocked)

    def _register(self, row: int) -> None:
        self.batch.append(row)
        self.products.add(self.product[row])
        if self.semi_hard:
            text = self.text[row]
            self.blocked.add(text)
            self.blocked.update(self.dups(text))

    def add(self, row: int) -> None:
        """Put an unused row into the batch and mark it used."""
        self.used[row] = 1
        self._register(row)

    def add_reused(self, row: int) -> None:
        """Put a row already used this epoch into the batch (end-of-epoch completion)."""
        self.reused.add(row)
        self._register(row)

    def restart(self, removed: list[int], kept: list[int]) -> None:
        """Start a batch over from `kept`; rows in `removed` become unused again."""
        for row in removed:
            if row not in self.reused:
                self.used[row] = 0
        self.reused &= set(kept)
        self.batch, self.products, self.blocked = [], set(), set()
        for row in kept:
            self._register(row)


class Pool:
    """A shuffled list of rows, read front to back; used rows are skipped for good."""

    __slots__ = ("items", "pos")

    def __init__(self, items: list[int]) -> None:
        self.items, self.pos = items, 0

    def draw(self, state: EpochState, check: Callable[[int], bool] | None = None) -> int:
        """The first unused row the batch accepts (and `check` passes), or -1; not consumed."""
        items, used, n = self.items, state.used, len(self.items)
        pos = self.pos
        while pos < n and used[items[pos]]:
            pos += 1
        self.pos = pos
        examined = 0
        for i in range(pos, n):
            row = items[i]
            if used[row]:
                continue
            if state.accepts(row) and (check is None or check(row)):
                return row
            examined += 1
            if examined >= SCAN_LIMIT:
                break
        return -1


def grouped_pools(perm: np.ndarray, codes: np.ndarray) -> list[Pool]:
    """One `Pool` per code value (`0..max(codes)`), each in the order of `perm`.

    Args:
        perm: `(N,)` a permutation of the rows.
        codes: `(N,)` int64 group code of every row.
    """
    order = perm[np.argsort(codes[perm], kind="stable")]
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes))]).tolist()
    items = order.tolist()
    return [Pool(items[bounds[g] : bounds[g + 1]]) for g in range(len(bounds) - 1)]
