"""LAVIS tasks of the plugin: pretraining and the downstream protocols."""
