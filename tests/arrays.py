"""The stages' arrays in memory, for tests that need data but not files."""

import numpy as np

from stages.generate import sequences, splits
from stages.params import DataParams


def generated(params: DataParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training, validation and test bits `generate` writes for `params`."""
    train, val, test = (np.concatenate(list(sequences(seed, count, params))) for _, seed, count in splits(params))
    return train, val, test
