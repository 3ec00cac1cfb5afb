"""Stage `targets`: the running parity of every prefix, the label at each step.

    bits   [1 0 1 1 0]
    parity [1 1 0 1 1]    (cumsum mod 2)
"""

import numpy as np

from stages.common import TEST_BITS, TEST_PARITY, TRAIN_BITS, TRAIN_PARITY, load_array, save_array, write_metrics


def running_parity(bits: np.ndarray) -> np.ndarray:
    """Parity of bits[..., :t+1] for every t, same shape and dtype uint8 as the bits."""
    # XOR-accumulate keeps uint8 throughout; cumsum would widen to int64 (8x the memory).
    return np.bitwise_xor.accumulate(bits, axis=-1, dtype=np.uint8)


def summary(parity: np.ndarray) -> dict:
    return {
        "share_odd_steps": float(parity.mean()),
        "share_odd_final": float(parity[:, -1].mean()),
    }


def main() -> None:
    metrics = {}
    for bits_file, parity_file, split in ((TRAIN_BITS, TRAIN_PARITY, "train"), (TEST_BITS, TEST_PARITY, "test")):
        parity = running_parity(load_array(bits_file))
        save_array(parity_file, parity)
        metrics[split] = summary(parity)
    write_metrics("targets", metrics)


if __name__ == "__main__":
    main()
