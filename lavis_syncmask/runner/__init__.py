"""The training loop's home: the LAVIS runner class (`runner`), one epoch of optimisation
(`loop`) and the data loaders with the semi-hard batch sampler (`loaders`)."""

from __future__ import annotations

from lavis_syncmask.runner.runner import RunnerSyncMask

__all__ = ["RunnerSyncMask"]
