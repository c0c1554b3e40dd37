"""lavis_syncmask: SyncMask (synchronized attentional masking, CVPR 2024) as a LAVIS plugin.

Importing this package imports LAVIS and registers everything the plugin defines.
"""
