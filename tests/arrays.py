"""The stages' arrays in memory, for tests that need data but not files."""

import numpy as np

from stages.common import DataParams
from stages.generate import sequences, splits


def generated(params: DataParams) -> tuple[np.ndarray, np.ndarray]:
    """The training and the held-out bits `generate` writes for `params`."""
    train, test = (np.concatenate(list(sequences(seed, count, params))) for _, seed, count in splits(params))
    return train, test
