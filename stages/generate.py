"""Stage `generate`: random bit sequences for training and a held-out set, stored as uint8 arrays.

    data.count=2, data.seq_len=5  ->  data/train_bits.npy = [[1 0 1 1 0]
                                                             [0 0 1 0 1]]
"""

import numpy as np

from stages.common import TEST_BITS, TRAIN_BITS, DataParams, load_params, save_array, write_metrics


def random_bits(rng: np.random.Generator, count: int, seq_len: int) -> np.ndarray:
    """`count` sequences of `seq_len` uniform random bits, shape (count, seq_len), dtype uint8."""
    return rng.integers(0, 2, size=(count, seq_len), dtype=np.uint8)


def generate(params: DataParams) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out bits, each from its own stream of one seed, so they never share draws."""
    train_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(params.seed).spawn(2))
    return (
        random_bits(train_rng, params.count, params.seq_len),
        random_bits(test_rng, params.test_count, params.seq_len),
    )


def summary(bits: np.ndarray) -> dict:
    return {
        "count": bits.shape[0],
        "seq_len": bits.shape[1],
        "share_of_ones": float(bits.mean()),
        "share_odd_parity": float((bits.sum(axis=1) % 2).mean()),
    }


def main() -> None:
    train_bits, test_bits = generate(load_params("data", DataParams))
    save_array(TRAIN_BITS, train_bits)
    save_array(TEST_BITS, test_bits)
    write_metrics("generate", {"train": summary(train_bits), "test": summary(test_bits)})


if __name__ == "__main__":
    main()
