"""Stage `train`: the reference model, LSTM(units, per-step outputs) -> Dense(2, softmax), fit on per-step parity.

input  [[1,0] [0,1] [1,0]]     bits 1 0 1, each as the pair [x, 1-x]
target [[1,0] [1,0] [0,1]]     running parity 1 1 0, paired the same way
"""

import signal
import sys
from collections.abc import Iterator

import keras
import numpy as np
import tensorflow as tf
from dvclive import Live
from dvclive.keras import DVCLiveCallback

from stages.common import (
    CONVERGED,
    METRICS_DIR,
    TEST_BITS,
    TEST_PARITY,
    TRAIN_BITS,
    TRAIN_PARITY,
    TRAIN_WEIGHTS,
    TrainParams,
    load_bits,
    load_params,
    load_parity,
    load_weights,
    one_hot_pairs,
    save_model,
)

# Batches per call into the compiled training loop: a whole default epoch, so Python runs once an epoch.
STEPS_PER_EXECUTION = 1024
# Steps of consecutive rows a stretch of an epoch is batched from, held in memory at once, pair-encoded: 160 MB.
# The default data set (5M steps) is one window.
WINDOW_STEPS = 1 << 23


def build_model(units: int, learning_rate: float, forget_bias: float = 1.0) -> keras.Model:
    """The reference architecture; the time axis is left open so any sequence length can be fed."""
    # Keras orders the gates' biases i, f, c, o; forget_bias=1 is Keras' own `unit_forget_bias` default.
    bias = np.concatenate([np.zeros(units), np.full(units, forget_bias), np.zeros(2 * units)]).tolist()
    model = keras.Sequential(
        [
            keras.Input((None, 2)),
            keras.layers.LSTM(
                units,
                return_sequences=True,
                unit_forget_bias=False,
                bias_initializer=keras.initializers.Constant(bias),
            ),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="binary_crossentropy",
        # Weighted, so that padding and unsupervised steps do not count.
        weighted_metrics=["accuracy"],
        jit_compile=True,
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    return model


def shuffled_batches(
    bits: np.ndarray, parity: np.ndarray, supervised: np.ndarray, batch_size: int, seed: int
) -> tf.data.Dataset:
    """Batches of (pair-encoded bits, pair-encoded parity, loss weights) in a new random order every epoch, as
    `fit(shuffle=True)` does; one of them smaller when the batch size does not divide the rows.

    Arrays larger than memory (memory-mapped files) are walked a window of consecutive rows at a time, windows
    in random order, each read in one sequential pass and its rows shuffled into batches. Picking rows from all
    over files larger than memory drops pages before they are used again: 0.5 batches/s with 5.6 GiB of files in
    1 GiB of memory, where windows keep the ~600 a second of cached files (measured). With one window, as at the
    default size, this is a plain shuffle. Batches are gathered inside TensorFlow while the previous ones train.
    The batch dimension stays unknown (None) to Keras, so its XLA step is traced once; with plain arrays the
    smaller last batch makes Keras retrace and recompile it twice more.
    """
    rng = np.random.default_rng(seed)
    count, seq_len = bits.shape
    # Whole batches, so that only the last batch of the data's last window is smaller.
    window = max(1, WINDOW_STEPS // seq_len // batch_size) * batch_size

    def windows() -> Iterator[tuple[np.ndarray, ...]]:
        # Keras iterates the dataset anew every epoch, so each epoch draws a new order.
        for start in rng.permutation(range(0, count, window)):
            rows = slice(start, start + window)  # one sequential read from each file
            yield (
                one_hot_pairs(bits[rows]),
                one_hot_pairs(parity[rows]),
                np.array(supervised[rows]),
                rng.permutation(min(window, count - start)),
            )

    def batches(inputs: tf.Tensor, targets: tf.Tensor, weights: tf.Tensor, order: tf.Tensor) -> tf.data.Dataset:
        def gather(rows: tf.Tensor) -> tuple[tf.Tensor, ...]:
            rows = tf.sort(rows)  # ascending: the gather walks memory forward
            return tf.gather(inputs, rows), tf.gather(targets, rows), tf.gather(weights, rows)

        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size).map(gather)

    pairs = tf.TensorSpec((None, seq_len, 2), tf.float32)
    signature = (pairs, pairs, tf.TensorSpec((None, seq_len), tf.float32), tf.TensorSpec((None,), tf.int64))
    return (
        tf.data.Dataset.from_generator(windows, output_signature=signature).flat_map(batches).prefetch(tf.data.AUTOTUNE)
    )


class HeldOutFinalStepAccuracy(keras.callbacks.Callback):
    """Adds `val_final_step_accuracy` to every epoch's logs: the whole-sequence parity on held-out data."""

    def __init__(self, bits: np.ndarray, parity: np.ndarray):
        super().__init__()
        self.inputs, self.final_parity = one_hot_pairs(bits), parity[:, -1]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        probability_of_one = self.model.predict(self.inputs, batch_size=2048, verbose=0)[:, -1, 0]
        logs["val_final_step_accuracy"] = float(np.mean((probability_of_one > 0.5) == (self.final_parity == 1)))


def first_epoch_reaching(values: list[float], threshold: float) -> int | None:
    """1-based number of the first epoch whose value reaches `threshold`, or None."""
    return next((epoch for epoch, value in enumerate(values, 1) if value >= threshold), None)


class StopAtAccuracy(keras.callbacks.Callback):
    """Stop training at the end of the first epoch whose training accuracy reaches `threshold`."""

    def __init__(self, threshold: float):
        super().__init__()
        self.threshold = threshold

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs["accuracy"] >= self.threshold:
            self.model.stop_training = True


def train(
    bits: np.ndarray, parity: np.ndarray, supervised: np.ndarray, params: TrainParams, callbacks=()
) -> keras.Model:
    """Fit a fresh model, each step's loss weighted by `supervised`; the same params and data give the same weights."""
    keras.utils.set_random_seed(params.seed)
    model = build_model(params.units, params.learning_rate, params.forget_bias)
    # Built now, not lazily in the first step, so the compiled step is not traced a second time in epoch 2.
    model.optimizer.build(model.trainable_variables)
    if params.stop_at_accuracy is not None:
        callbacks = [*callbacks, StopAtAccuracy(params.stop_at_accuracy)]
    model.fit(
        shuffled_batches(bits, parity, supervised, params.batch_size, params.seed),
        epochs=params.epochs,
        shuffle=False,  # the dataset shuffles itself
        callbacks=list(callbacks),
        # A live bar on a terminal; one line per epoch in logs (dvc repro, CI).
        verbose=1 if sys.stdout.isatty() else 2,
    )
    return model


def main() -> None:
    # SIGTERM (`kill`, a job scheduler) stops training the way Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    params = load_params("train", TrainParams)
    bits = load_bits(TRAIN_BITS)
    parity, supervised = load_parity(TRAIN_PARITY, bits), load_weights(TRAIN_WEIGHTS, bits)
    test_bits = load_bits(TEST_BITS)
    held_out = HeldOutFinalStepAccuracy(test_bits, load_parity(TEST_PARITY, test_bits))
    try:
        # One dvclive directory for this stage; dvc.yaml declares its files, so dvclive must not edit dvc.yaml.
        with Live(dir=str(METRICS_DIR / "train"), dvcyaml=False, save_dvc_exp=False) as live:
            # held_out first: DVCLiveCallback logs what the callbacks before it have put in the epoch's logs.
            model = train(bits, parity, supervised, params, callbacks=[held_out, DVCLiveCallback(live=live)])
            # For seed sweeps: when training first got the held-out whole-sequence parity 99 % right.
            held_out_curve = model.history.history["val_final_step_accuracy"]
            live.summary["converged_epoch"] = first_epoch_reaching(held_out_curve, CONVERGED)  # written as Live ends
        save_model(model)
    except KeyboardInterrupt:
        raise SystemExit("train: interrupted, no model written; `dvc repro` trains again") from None


if __name__ == "__main__":
    main()
