"""The model's numerics for K members at once, compiled by numba (compiled.py): the forward pass (forward.py) that
validation, `evaluate` and `predict` score with; backpropagation through time and Adam (backprop.py) for training."""
