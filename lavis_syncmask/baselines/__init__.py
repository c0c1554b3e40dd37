"""LAVIS's own ALBEF and BLIP, built offline and put on this project's retrieval protocols.

`build_baseline(cfg)` constructs LAVIS's `AlbefPretrain`, `AlbefRetrieval`, `BlipPretrain` or
`BlipRetrieval` at the sizes of a `syncmask_fashion` preset with the catalogue's WordPiece
tokenizer. Only the tokenizer and the weight loading are replaced (LAVIS's `from_config`
downloads BERT, DeiT and URL checkpoints); every forward pass and loss is LAVIS's own. The
classes also supply the retrieval interface of `lavis_syncmask.models.inference` (ITC features,
ITM head), so the protocols of `lavis_syncmask.evaluation` score them like `syncmask_fashion`.
"""

from __future__ import annotations

from lavis_syncmask.baselines.build import BASELINE_ARCHS, BaselineConfig, build_baseline

__all__ = ["BASELINE_ARCHS", "BaselineConfig", "build_baseline"]
