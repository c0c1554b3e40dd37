"""The `syncmask_fashion` model and its parts."""
