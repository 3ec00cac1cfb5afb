"""The training engines, by `train.engine`: `fused` (the numba numerics, parity_lstm/numerics) and `keras` (one Keras
model of the whole population on TensorFlow, the oracle the fused one is tested against). Both start from the same
weights and take the same batches; each is imported only when it trains, so the default path never loads TensorFlow.
"""

from collections.abc import Callable
from importlib import import_module

import numpy as np

from parity_lstm.params import TrainParams

# What an engine's fit() takes besides the initial members and params.
TrainingData = tuple[np.ndarray, np.ndarray, np.ndarray]  # bits, parity, loss factors
EndOfEpoch = Callable[[float, np.ndarray], bool]  # (mean member loss, members' weights) -> stop?
Interrupted = Callable[[], bool]
Fit = Callable[[np.ndarray, TrainingData, TrainParams, EndOfEpoch, Interrupted], np.ndarray]

MODULES = {"fused": "parity_lstm.engines.fused", "keras": "parity_lstm.engines.keras.fit"}


def engine(name: str) -> Fit:
    """The named engine's fit(initial members, data, params, end_of_epoch, interrupted) -> members' weights."""
    return import_module(MODULES[name]).fit
