"""lavis_syncmask: SyncMask (synchronized attentional masking for fashion vision-language
pretraining, CVPR 2024) as a plugin for Salesforce LAVIS.

Importing this package imports LAVIS and registers everything the plugin defines: LAVIS has no
entry-point discovery, classes register when their module is imported. Each module registers
under a `syncmask_` / `fashiongen` / `fashioniq` prefixed name, and Python executes a module
only once, so importing the package twice is harmless.
"""

from __future__ import annotations

from PIL import ImageFile

# LAVIS's own registrations first: `import lavis` does not import its runners or optimisers
# (runner_base, the linear_warmup_* schedulers), which our runner and configs rely on.
# Importing LAVIS sets PIL's process-wide LOAD_TRUNCATED_IMAGES (coco_caption_datasets.py), so
# every PIL user in the process would accept cut files padded with grey; the plugin's images go
# through data/images.py, which refuses them whatever the flag, so the flag is put back.
_LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES
import lavis  # noqa: E402, F401
import lavis.common.optims  # noqa: E402, F401
import lavis.runners  # noqa: E402, F401
import lavis.tasks  # noqa: E402, F401

ImageFile.LOAD_TRUNCATED_IMAGES = _LOAD_TRUNCATED_IMAGES

from lavis_syncmask.data import builders, catalogue_builder, processors  # noqa: E402
from lavis_syncmask.models import heads, syncmask_fashion  # noqa: E402

# The plugin's registrations, one explicit list.
from lavis_syncmask.runner import runner  # noqa: E402
from lavis_syncmask.tasks import pretrain, recognition, retrieval, tgir  # noqa: E402

__all__ = [
    "builders",
    "catalogue_builder",
    "heads",
    "pretrain",
    "processors",
    "recognition",
    "retrieval",
    "runner",
    "syncmask_fashion",
    "tgir",
]

__version__ = "0.1.0"
