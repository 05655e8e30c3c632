"""Runtime of the generation-loss scorer: features (features.py, _jit.py), the network
(model.py) and the shipped-weights loader (weights.py).  Training is in ops.scorer_training."""
