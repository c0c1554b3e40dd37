"""Loaded at start-up by every Python process with this folder on PYTHONPATH (set by
benchmarks/gpu_check.py): installs the import shims of `syncmask_gpu_shims`."""

import syncmask_gpu_shims

syncmask_gpu_shims.install()
