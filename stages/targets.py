"""Stage `targets`: the running parity of every prefix, the label at each step.

bits   [1 0 1 1 0]
parity [1 1 0 1 1]    (cumsum mod 2)
"""

import numpy as np

from stages.common import (
    PAD,
    TEST_BITS,
    TEST_PARITY,
    TRAIN_BITS,
    TRAIN_PARITY,
    TRAIN_WEIGHTS,
    TargetsParams,
    load_array,
    load_params,
    running_parity,
    save_array,
    write_metrics,
)


def supervised_steps(bits: np.ndarray, mode: str) -> np.ndarray:
    """1 where the training loss reads the label: every real (not PAD) step, or only the last one."""
    if mode == "final":
        weights = np.zeros_like(bits, dtype=np.uint8)
        weights[:, -1] = 1  # padding is in front, so the last step is always real
        return weights
    return (bits != PAD).astype(np.uint8)


def summary(parity: np.ndarray) -> dict:
    return {
        "share_odd_steps": float(parity.mean()),
        "share_odd_final": float(parity[:, -1].mean()),
    }


def main() -> None:
    params = load_params("targets", TargetsParams)
    metrics = {}
    for bits_file, parity_file, split in ((TRAIN_BITS, TRAIN_PARITY, "train"), (TEST_BITS, TEST_PARITY, "test")):
        bits = load_array(bits_file)
        parity = running_parity(bits)
        save_array(parity_file, parity)
        metrics[split] = summary(parity)
        if split == "train":
            weights = supervised_steps(bits, params.mode)
            save_array(TRAIN_WEIGHTS, weights)
            metrics[split]["supervised_steps_per_sequence"] = float(weights.sum(axis=1).mean())
    write_metrics("targets", metrics)


if __name__ == "__main__":
    main()
