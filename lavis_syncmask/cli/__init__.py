"""Command-line entry points: `train`, `evaluate`, `demo` and the shared `launcher` they build
runners with. `python -m lavis_syncmask.train` / `.evaluate` forward here."""
