"""The `fused` training engine, the default: stages/fused.py's training step on batches in the order the Keras
engine trains on, with Keras' progress bar.
"""

import sys
from collections.abc import Callable

import keras
import numpy as np

from stages import fused
from stages.batches import epoch_batches
from stages.params import TrainParams

# What an engine's fit() takes besides the initial weights and params, the same for both engines.
TrainingData = tuple[np.ndarray, np.ndarray, np.ndarray]  # bits, parity, loss weights
EndOfEpoch = Callable[[float, np.ndarray], bool]  # (mean member loss, weights) -> stop?
Interrupted = Callable[[], bool]


def fit(
    initial: np.ndarray, data: TrainingData, params: TrainParams, end_of_epoch: EndOfEpoch, interrupted: Interrupted
) -> np.ndarray:
    """Train the members from `initial` (a member a flat row) on `data` (bits, parity, loss weights); their weights
    at the end. After each epoch, `end_of_epoch(mean member loss, weights)` says whether to stop; `interrupted()`
    is asked after every batch."""
    theta = np.array(initial, fused.F32)
    adam = fused.Adam(theta, params.learning_rate)
    rng = np.random.default_rng(params.seed)  # the Keras engine's batch order for this seed
    for epoch in range(params.epochs):
        print(f"Epoch {epoch + 1}/{params.epochs}")
        # A live bar on a terminal; one line per epoch in logs (dvc repro, CI).
        progress = keras.utils.Progbar(-(-len(data[0]) // params.batch_size), verbose=1 if sys.stdout.isatty() else 2)
        loss_sum = rows = 0
        for batch, arrays in enumerate(epoch_batches(*data, params.batch_size, rng), 1):
            gradient, loss = fused.gradients(theta, *arrays)
            adam.apply(gradient)
            if interrupted():
                raise KeyboardInterrupt
            # As Keras shows and logs it: the population's loss (the members' sum), its mean over the epoch's rows.
            loss_sum, rows = loss_sum + loss.sum() * len(arrays[0]), rows + len(arrays[0])
            progress.update(batch, [("loss", loss_sum / rows)])
        if end_of_epoch(loss_sum / rows / len(theta), theta):
            break
    return theta
