"""The keras engine's batches: `parity_lstm.data.batches`' order, as a tf.data pipeline, pair-encoded."""

import numpy as np
import tensorflow as tf

from parity_lstm.data.batches import rows_order, window_order, window_rows


def shuffled_batches(
    bits: np.ndarray, parity: np.ndarray, loss_factors: np.ndarray, batch_size: int, seed: int
) -> tf.data.Dataset:
    """Batches of (pair-encoded bits, pair-encoded parity, loss factors) in a new random order every epoch, the
    order `epoch_windows` gives for this seed; one of them smaller when the batch size does not divide the rows.
    Batches are gathered inside TensorFlow while the previous ones train.
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
        return bits[rows], parity[rows], loss_factors[rows], rows_order(rng, count, window, start)

    def batches(start: tf.Tensor) -> tf.data.Dataset:
        window_types = (tf.uint8, tf.uint8, tf.float32, tf.int64)
        *window_arrays, order = tf.numpy_function(read_window, [start], window_types)
        inputs, targets, factors = (tf.ensure_shape(array, (None, seq_len)) for array in window_arrays)

        def gather(rows: tf.Tensor) -> tuple[tf.Tensor, ...]:
            rows = tf.sort(rows)  # ascending: the gather walks memory forward
            return pairs(tf.gather(inputs, rows)), pairs(tf.gather(targets, rows)), tf.gather(factors, rows)

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
