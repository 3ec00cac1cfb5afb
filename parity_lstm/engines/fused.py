"""The `fused` training engine, the default: the numba numerics (parity_lstm/numerics/backprop.py) on the batches
of parity_lstm.data.batches, in the order the keras engine trains on, many batches a kernel call."""

import sys
import time

import numpy as np
from tqdm import tqdm

from parity_lstm.data.batches import epoch_windows
from parity_lstm.engines import EndOfEpoch, Interrupted, TrainingData
from parity_lstm.model import Layout
from parity_lstm.numerics.backprop import Adam, train_batches
from parity_lstm.params import TrainParams

# Lane-steps (rows x steps x members) trained between returns to Python, for the bar and Ctrl-C: a small share of a
# second at the kernels' speed (docs/speed.md), and many batches a call where a batch is small.
SPAN_LANE_STEPS = 2_000_000


def fit(
    initial: np.ndarray, data: TrainingData, params: TrainParams, end_of_epoch: EndOfEpoch, interrupted: Interrupted
) -> np.ndarray:
    """Train the members from `initial` (a member a flat row) on `data` (bits, parity, loss factors); their weights
    at the end. After each epoch, `end_of_epoch(mean member loss, weights)` says whether to stop; `interrupted()`
    is asked after every span of batches."""
    members = np.array(initial, np.float32)
    adam, layout = Adam(members, params.learning_rate), Layout(params.units, params.cell)
    rng = np.random.default_rng(params.seed)  # the batch order, the same for both engines
    count, seq_len = data[0].shape
    batches = -(-count // params.batch_size)
    span = max(1, SPAN_LANE_STEPS // (params.batch_size * seq_len * len(members)))
    terminal = sys.stdout.isatty()
    for epoch in range(1, params.epochs + 1):
        started, loss_sum, rows = time.perf_counter(), 0.0, 0
        # A live bar on a terminal; in logs (dvc repro, CI) one line an epoch, below.
        with tqdm(total=batches, desc=f"Epoch {epoch}/{params.epochs}", unit="batch", disable=not terminal) as bar:
            for arrays, window in epoch_windows(*data, params.batch_size, rng):
                for first in range(0, len(window), span):
                    spanned = window[first : first + span]
                    for loss, batch in zip(train_batches(adam, arrays, spanned, layout), spanned, strict=True):
                        # The population's loss (the members' sum), its mean over the epoch's rows, as Keras shows it.
                        loss_sum, rows = loss_sum + loss.sum() * len(batch), rows + len(batch)
                    if interrupted():
                        raise KeyboardInterrupt
                    bar.update(len(spanned))
                    bar.set_postfix(loss=f"{loss_sum / rows:.4f}", refresh=False)
        if not terminal:
            seconds = time.perf_counter() - started
            print(f"Epoch {epoch}/{params.epochs}: {batches} batches, {seconds:.1f} s, loss {loss_sum / rows:.4f}")
        if end_of_epoch(loss_sum / rows / len(members), members):
            break
    return members
