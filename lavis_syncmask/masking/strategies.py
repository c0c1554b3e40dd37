"""The masking strategies, listed once.

`MaskingConfig.strategy` is checked against this list, and the mask picture (`cli/viz`), the
demo's mask statistics (`cli/demo`) and its report (`cli/demo_report`) iterate over it, so a new
strategy appears in all three. `random` runs SyncMask's selection code with uniform scores
(`MaskingConfig.sync_share`), which keeps both strategies' budgets and BERT rule identical.
"""

from __future__ import annotations

from typing import Literal, get_args

MaskStrategy = Literal["syncmask", "random"]
#: Every strategy, the shipped one first (the viz draws them left to right in this order).
STRATEGIES: tuple[MaskStrategy, ...] = get_args(MaskStrategy)
DEFAULT_STRATEGY: MaskStrategy = STRATEGIES[0]
