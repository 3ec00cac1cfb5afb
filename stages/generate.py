"""Stage `generate`: random bit sequences for training and a held-out set, stored as uint8 arrays.

data.count=2, data.seq_len=5                  ->  [[1 0 1 1 0]
                                                   [0 0 1 0 1]]
data.count=2, data.seq_len=5, data.min_len=3  ->  [[2 2 1 0 1]     lengths drawn from [3, 5],
                                                   [0 1 1 0 1]]     padded in front with PAD (2)
"""

import numpy as np

from stages.common import PAD, TEST_BITS, TRAIN_BITS, DataParams, load_params, random_bits, save_array, write_metrics


def sequences(rng: np.random.Generator, count: int, params: DataParams) -> np.ndarray:
    """`count` sequences of random bits; with `min_len`, of random lengths padded in front to seq_len."""
    bits = random_bits(rng, count, params.seq_len)
    if params.min_len is not None and params.min_len < params.seq_len:
        lengths = rng.integers(params.min_len, params.seq_len, size=count, endpoint=True)
        # Padding in front keeps every sequence's last bit at the last step, where the final label is read.
        bits[np.arange(params.seq_len) < (params.seq_len - lengths)[:, None]] = PAD
    return bits


def generate(params: DataParams) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out bits, each from its own stream of one seed, so they never share draws."""
    train_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(params.seed).spawn(2))
    return sequences(train_rng, params.count, params), sequences(test_rng, params.test_count, params)


def summary(bits: np.ndarray) -> dict:
    real = bits != PAD
    return {
        "count": bits.shape[0],
        "seq_len": bits.shape[1],
        "mean_length": float(real.sum(axis=1).mean()),
        "share_of_ones": float((bits == 1).sum() / real.sum()),
        "share_odd_parity": float(((bits == 1).sum(axis=1) % 2).mean()),
    }


def main() -> None:
    train_bits, test_bits = generate(load_params("data", DataParams))
    save_array(TRAIN_BITS, train_bits)
    save_array(TEST_BITS, test_bits)
    write_metrics("generate", {"train": summary(train_bits), "test": summary(test_bits)})


if __name__ == "__main__":
    main()
