"""Model loaders, one per family (clip, blip, fastsam); name resolution and the per-process
shared copy live in assets."""
