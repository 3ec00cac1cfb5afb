"""The training batches: (pair-encoded bits, pair-encoded parity, loss weights), shuffled anew every epoch, from
arrays in memory or memory-mapped files of any size; one order for both engines (`epoch_batches` for the fused one,
`shuffled_batches`, a tf.data pipeline, for Keras).
"""

from collections.abc import Iterator

import numpy as np
import tensorflow as tf

# Steps of consecutive rows a stretch of an epoch is batched from, held in memory at once (bits, parity and weights;
# each batch is pair-encoded as it is gathered). The default data set is one window.
WINDOW_STEPS = 1 << 23


def window_rows(seq_len: int, batch_size: int) -> int:
    """Rows of a window: whole batches, so that only the last batch of the data's last window is smaller."""
    return max(1, WINDOW_STEPS // seq_len // batch_size) * batch_size


def window_order(rng: np.random.Generator, count: int, window: int) -> np.ndarray:
    """The first rows of the windows, in this epoch's order."""
    return rng.permutation(range(0, count, window))


def rows_order(rng: np.random.Generator, count: int, window: int, start: int) -> np.ndarray:
    """The window's rows, counted from its start, in this epoch's order; batches are consecutive runs of it."""
    return rng.permutation(min(window, count - start))


def epoch_batches(
    bits: np.ndarray, parity: np.ndarray, supervised: np.ndarray, batch_size: int, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One epoch of (bits, parity, loss weights) batches, unencoded, in the order `shuffled_batches` gives them for
    the same seed: each window read in one sequential pass, its rows gathered in ascending order."""
    count, seq_len = bits.shape
    window = window_rows(seq_len, batch_size)
    for start in window_order(rng, count, window):
        rows = slice(start, start + window)
        arrays = np.asarray(bits[rows]), np.asarray(parity[rows]), np.asarray(supervised[rows])
        order = rows_order(rng, count, window, start)
        for first in range(0, len(order), batch_size):
            batch = np.sort(order[first : first + batch_size])
            yield tuple(array[batch] for array in arrays)


def shuffled_batches(
    bits: np.ndarray, parity: np.ndarray, supervised: np.ndarray, batch_size: int, seed: int
) -> tf.data.Dataset:
    """Batches of (pair-encoded bits, pair-encoded parity, loss weights) in a new random order every epoch, as
    `fit(shuffle=True)` does; one of them smaller when the batch size does not divide the rows.

    Arrays larger than memory (memory-mapped files) are walked a window of consecutive rows at a time, windows
    in random order, each read in one sequential pass and its rows shuffled into batches. Picking rows from all
    over files larger than memory drops pages before they are used again, so every batch waits on the disk; a
    window is read once. With one window, as at the default size, this is a plain shuffle. Batches are gathered
    inside TensorFlow while the previous ones train.
    The batch dimension stays unknown (None) to Keras, so its XLA step is traced once; with plain arrays the
    smaller last batch makes Keras retrace and recompile it twice more.
    """
    rng = np.random.default_rng(seed)
    count, seq_len = bits.shape
    window = window_rows(seq_len, batch_size)

    def window_starts(_: tf.Tensor) -> tf.data.Dataset:
        # Run each time Keras iterates the dataset, so every epoch draws a new order.
        starts = tf.numpy_function(lambda: window_order(rng, count, window), [], tf.int64)
        return tf.data.Dataset.from_tensor_slices(tf.ensure_shape(starts, (None,)))

    def read_window(start: np.int64) -> tuple[np.ndarray, ...]:
        rows = slice(start, start + window)  # one sequential read from each file
        return bits[rows], parity[rows], supervised[rows], rows_order(rng, count, window, start)

    def batches(start: tf.Tensor) -> tf.data.Dataset:
        window_types = (tf.uint8, tf.uint8, tf.float32, tf.int64)
        *window_arrays, order = tf.numpy_function(read_window, [start], window_types)
        inputs, targets, weights = (tf.ensure_shape(array, (None, seq_len)) for array in window_arrays)

        def gather(rows: tf.Tensor) -> tuple[tf.Tensor, ...]:
            rows = tf.sort(rows)  # ascending: the gather walks memory forward
            return pairs(tf.gather(inputs, rows)), pairs(tf.gather(targets, rows)), tf.gather(weights, rows)

        return tf.data.Dataset.from_tensor_slices(tf.ensure_shape(order, (None,))).batch(batch_size).map(gather)

    # Windows hold whole batches but the last, so an epoch is ceil(count / batch_size) batches. Said to tf.data,
    # Keras knows the epoch's length: its progress bar counts batches, and it does not warn that the data ran out.
    batches_per_epoch = -(-count // batch_size)
    # Not `Dataset.from_generator`: on Python 3.11 its op sets glibc's mmap threshold to 128 KB for the whole process,
    # and every training step's XLA buffer, larger than that, then comes from a fresh mmap: page faults every step.
    dataset = tf.data.Dataset.from_tensors(0).flat_map(window_starts).flat_map(batches)
    return dataset.apply(tf.data.experimental.assert_cardinality(batches_per_epoch)).prefetch(tf.data.AUTOTUNE)


def pairs(bits: tf.Tensor) -> tf.Tensor:
    """`one_hot_pairs` in TensorFlow, the same float32 values: a batch is encoded as it is gathered, on tf.data's
    threads while the previous batch trains, not a whole window at every epoch's start."""
    # 1 - x is the index of the hot slot: 0 -> [0, 1], 1 -> [1, 0], PAD -> -1, out of range: [0, 0]. One kernel;
    # stacking two comparisons into a new last axis copied them one byte at a time: a quarter of tf.data's CPU time.
    return tf.one_hot(1 - tf.cast(bits, tf.int32), 2)
