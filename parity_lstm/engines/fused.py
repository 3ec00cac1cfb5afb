"""The `fused` training engine, the default: the numba numerics (parity_lstm/numerics/backprop.py) on the batches
of parity_lstm.data.batches, in the order the keras engine trains on."""

import sys
import time

import numpy as np
from tqdm import tqdm

from parity_lstm.data.batches import epoch_batches
from parity_lstm.engines import EndOfEpoch, Interrupted, TrainingData
from parity_lstm.model import Layout
from parity_lstm.numerics.backprop import Adam, gradients
from parity_lstm.params import TrainParams

# Batches between updates of the bar's loss: formatting it every batch would cost more than a small batch trains.
SHOW_LOSS_EVERY = 64


def fit(
    initial: np.ndarray, data: TrainingData, params: TrainParams, end_of_epoch: EndOfEpoch, interrupted: Interrupted
) -> np.ndarray:
    """Train the members from `initial` (a member a flat row) on `data` (bits, parity, loss factors); their weights
    at the end. After each epoch, `end_of_epoch(mean member loss, weights)` says whether to stop; `interrupted()`
    is asked after every batch."""
    members = np.array(initial, np.float32)
    adam, layout = Adam(members, params.learning_rate), Layout(params.units, params.cell)
    rng = np.random.default_rng(params.seed)  # the batch order, the same for both engines
    batches = -(-len(data[0]) // params.batch_size)
    terminal = sys.stdout.isatty()
    for epoch in range(1, params.epochs + 1):
        started, loss_sum, rows = time.perf_counter(), 0.0, 0
        # A live bar on a terminal; in logs (dvc repro, CI) one line an epoch, below.
        with tqdm(total=batches, desc=f"Epoch {epoch}/{params.epochs}", unit="batch", disable=not terminal) as bar:
            for batch, arrays in enumerate(epoch_batches(*data, params.batch_size, rng), 1):
                gradient, loss = gradients(members, *arrays, layout)
                adam.apply(gradient)
                if interrupted():
                    raise KeyboardInterrupt
                # The population's loss (the members' sum), its mean over the epoch's rows, as Keras shows it.
                loss_sum, rows = loss_sum + loss.sum() * len(arrays[0]), rows + len(arrays[0])
                bar.update()
                if batch % SHOW_LOSS_EVERY == 0:
                    bar.set_postfix(loss=f"{loss_sum / rows:.4f}", refresh=False)
        if not terminal:
            seconds = time.perf_counter() - started
            print(f"Epoch {epoch}/{params.epochs}: {batches} batches, {seconds:.1f} s, loss {loss_sum / rows:.4f}")
        if end_of_epoch(loss_sum / rows / len(members), members):
            break
    return members
