"""Each training step's factor in the loss: which labels are read, and how much each weighs.

bits          [2 1 0 1 1]    (2: padding in front)
loss factors  [0 1 1 1 1]    targets.mode=running: every real step
              [0 0 0 0 1]    targets.mode=final: the last step only
              with targets.weighting=inverse_position, the t-th real step counts 1/t, rescaled to a mean of 1
"""

from collections.abc import Iterable

import numpy as np

from parity_lstm.data.encoding import PAD


def supervised_mask(bits: np.ndarray, mode: str) -> np.ndarray:
    """True where the label is read: every real step (`running`) or the last one only (`final`)."""
    supervised = bits != PAD if mode == "running" else np.zeros(bits.shape, bool)
    supervised[:, -1] = True  # the last step, always real: padding is in front
    return supervised


def positions(bits: np.ndarray) -> np.ndarray:
    """1-based position of every step among its sequence's real steps (0 on padding)."""
    return np.cumsum(bits != PAD, axis=-1, dtype=np.int32)


def inverse_position_scale(blocks: Iterable[np.ndarray], seq_len: int, mode: str) -> float:
    """The scale that brings the mean 1/t factor of the supervised steps to 1.

    Summed from integer counts of each position, so the factor does not depend on how the rows are split in blocks.
    """
    steps_at = np.zeros(seq_len + 1, np.int64)  # supervised steps at each position t
    for bits in blocks:
        steps_at += np.bincount(positions(bits)[supervised_mask(bits, mode)], minlength=seq_len + 1)
    return float(steps_at.sum() / (steps_at[1:] / np.arange(1, seq_len + 1)).sum())


def loss_factors(bits: np.ndarray, mode: str, weighting: str = "uniform", scale: float = 1.0) -> np.ndarray:
    """Each step's factor in the training loss, float32: 0 where the label is not read (padding, or every step
    but the last in `final` mode), else 1 or, with `inverse_position` weighting, scale/t for the t-th real step."""
    supervised = supervised_mask(bits, mode)
    if weighting == "uniform":
        return supervised.astype(np.float32)
    inverse = np.divide(1, positions(bits), out=np.zeros(bits.shape, np.float32), where=supervised)
    return inverse * np.float32(scale)
