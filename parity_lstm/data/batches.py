"""The training batches: (bits, parity, loss factors), shuffled anew every epoch, from arrays in memory or
memory-mapped files of any size. Both engines take them in this order (the keras engine through tf.data,
parity_lstm/engines/keras/batches.py).

Arrays larger than memory are walked a window of consecutive rows at a time, windows in random order, each read in
one sequential pass and its rows shuffled into batches: picking rows from all over files larger than memory drops
pages before they are used again, so every batch would wait on the disk. With one window, as at the default size,
this is a plain shuffle.
"""

from collections.abc import Iterator

import numpy as np

# Steps of consecutive rows a stretch of an epoch is batched from, held in memory at once (bits, parity and loss
# factors). The default data set is one window.
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


def epoch_windows(
    bits: np.ndarray, parity: np.ndarray, loss_factors: np.ndarray, batch_size: int, rng: np.random.Generator
) -> Iterator[tuple[tuple[np.ndarray, np.ndarray, np.ndarray], list[np.ndarray]]]:
    """One epoch, a window at a time: its (bits, parity, loss factors) in memory, read in one sequential pass, and its
    batches in order, each the window's rows it gathers, ascending."""
    count, seq_len = bits.shape
    window = window_rows(seq_len, batch_size)
    for start in window_order(rng, count, window):
        rows = slice(start, start + window)
        arrays = np.asarray(bits[rows]), np.asarray(parity[rows]), np.asarray(loss_factors[rows])
        order = rows_order(rng, count, window, start)
        yield arrays, [np.sort(order[first : first + batch_size]) for first in range(0, len(order), batch_size)]
