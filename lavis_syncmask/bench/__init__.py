"""The benchmark as a tool: SyncMask against LAVIS's own ALBEF and BLIP, and ablations, each
arm one yaml under `projects/syncmask/bench/` trained and evaluated through the product's
launcher and runner (`python -m lavis_syncmask.train` / `lavis_syncmask.evaluate`).

`arms` names the arms and checks each yaml against the shipped recipe, `runs` trains and
scores one (arm, seed) in subprocesses and records the command that reproduces it, `stats`
pairs arms over seeds (t-interval, p-value, Holm), `report` writes the table, JSON and
plots, `choice` picks each arm's setting from a dev sweep (`--choose-from`).
The command line is `python -m lavis_syncmask.bench` (`lavis_syncmask/cli/bench.py`).
"""
