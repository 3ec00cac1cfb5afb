"""Sampling the data sets: random bit sequences from a seed's stream, in blocks of rows, and the three splits.

data.count=2, data.seq_len=5                  ->  [[1 0 1 1 0]
                                                   [0 0 1 0 1]]
data.count=2, data.seq_len=5, data.min_len=3  ->  [[2 2 1 0 1]     lengths drawn from [3, 5],
                                                   [0 1 1 0 1]]     padded in front with PAD (2)

The block size never changes a bit.
"""

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from parity_lstm.data.encoding import PAD
from parity_lstm.data.files import TEST_BITS, TRAIN_BITS, VAL_BITS, row_blocks
from parity_lstm.params import DataParams


def bits_of_stream(seed: np.random.SeedSequence, start: int, count: int) -> np.ndarray:
    """Bits `start` to `start + count` of the seed's stream, uint8: the ones `Generator.integers(0, 2, ...,
    dtype=np.uint8)` draws, the top bit of each byte of PCG64's output. `advance` jumps straight to `start`."""
    offset = start % 8
    words = np.random.PCG64(seed).advance(start // 8).random_raw(-(-(offset + count) // 8))
    return words.astype("<u8").view(np.uint8)[offset : offset + count] >> 7


def sequences(seed: np.random.SeedSequence, count: int, params: DataParams) -> Iterator[np.ndarray]:
    """`count` sequences of random bits, in blocks of rows; with `min_len`, of random lengths padded in front."""
    seq_len = params.seq_len
    # The lengths come after all the bits in the same stream, drawn block by block (when count * seq_len is not a
    # multiple of 8, not the lengths of versions that drew everything at once).
    lengths_rng = np.random.Generator(np.random.PCG64(seed).advance(-(-count * seq_len // 8)))
    for rows in row_blocks(count, seq_len):
        bits = bits_of_stream(seed, rows.start * seq_len, (rows.stop - rows.start) * seq_len).reshape(-1, seq_len)
        if params.min_len is not None and params.min_len < seq_len:
            lengths = lengths_rng.integers(params.min_len, seq_len, size=len(bits), endpoint=True)
            # Padding in front keeps every sequence's last bit at the last step, where the final label is read.
            bits[np.arange(seq_len) < (seq_len - lengths)[:, None]] = PAD
        yield bits


def splits(params: DataParams) -> list[tuple[Path, np.random.SeedSequence, int]]:
    """File, seed and size of the training, validation and test sets: three streams of one seed, never sharing
    draws. Spawned in this order, so the training and test streams are those of versions that had no validation."""
    train_seed, test_seed, val_seed = np.random.SeedSequence(params.seed).spawn(3)
    return [
        (TRAIN_BITS, train_seed, params.count),
        (VAL_BITS, val_seed, params.val_count),
        (TEST_BITS, test_seed, params.test_count),
    ]
