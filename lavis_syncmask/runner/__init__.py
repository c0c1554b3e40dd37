"""The training loop's home: the LAVIS runner class (`runner`), one epoch of optimisation
(`loop`), the data loaders with the semi-hard batch sampler (`loaders`) and the typed `run.*`
settings every part reads (`settings`)."""

from __future__ import annotations

from lavis_syncmask.runner.runner import RunnerSyncMask

__all__ = ["RunnerSyncMask"]
