"""The bit/pair encoding every stage shares: bits, padding, running parity, and the model's input pairs.

bits      [2 1 0 1]                     (PAD, 2: no bit, in front of a sequence shorter than data.seq_len)
parity    [0 1 1 0]                     running parity, padding counted as 0
pairs     [[0 0] [1 0] [0 1] [1 0]]     x -> [x, 1 - x], PAD -> [0, 0]
"""

import numpy as np

# Marks the steps in front of a sequence shorter than seq_len: neither bit, encoded [0, 0].
PAD = 2


def one_hot_pairs(bits: np.ndarray) -> np.ndarray:
    """Encode bits as the reference does, x -> [x, 1 - x], and PAD as [0, 0]: float32 with a trailing axis of 2."""
    return np.stack([bits == 1, bits == 0], axis=-1).astype(np.float32)


# The annotation is a string: evaluated, it would import numpy.random into every `predict`, which draws nothing.
def random_bits(rng: "np.random.Generator", count: int, seq_len: int) -> np.ndarray:
    """`count` sequences of `seq_len` uniform random bits, shape (count, seq_len), dtype uint8."""
    return rng.integers(0, 2, size=(count, seq_len), dtype=np.uint8)


def running_parity(bits: np.ndarray) -> np.ndarray:
    """Parity of bits[..., :t+1] for every t (PAD counts as 0), same shape and dtype uint8 as the bits."""
    # XOR-accumulate keeps uint8 throughout; cumsum would widen to int64 (8x the memory).
    return np.bitwise_xor.accumulate(bits == 1, axis=-1, dtype=np.uint8)
