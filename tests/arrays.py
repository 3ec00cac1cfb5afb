"""The stages' arrays in memory, for tests that need data but not files."""

import numpy as np

from parity_lstm.data.encoding import PAD, running_parity
from parity_lstm.data.sampling import sequences, splits
from parity_lstm.params import DataParams


def generated(params: DataParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training, validation and test bits `generate` writes for `params`."""
    train, val, test = (np.concatenate(list(sequences(seed, count, params))) for _, seed, count in splits(params))
    return train, val, test


def padded_batch(rows: int, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bits with padding in front of some rows, their running parity, and uneven loss factors (0 on padding)."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, (rows, steps), dtype=np.uint8)
    bits[: rows // 3, : steps // 2] = PAD
    factors = rng.uniform(0, 2, bits.shape).astype(np.float32) * (bits != PAD)
    return bits, running_parity(bits), factors
