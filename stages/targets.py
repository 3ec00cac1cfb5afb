"""Stage `targets`: the running parity of every prefix, and the training loss weight of every step.

bits     [2 1 0 1 1]    (2: padding in front)
parity   [0 1 1 0 1]    (cumsum mod 2, padding counted as 0)
weights  [0 1 1 1 1]    targets.mode=running: every real step
         [0 0 0 0 1]    targets.mode=final: the last step only
         with targets.weighting=inverse_position, the t-th real step weighs 1/t, rescaled to a mean of 1
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
    load_bits,
    load_params,
    running_parity,
    save_array,
    write_metrics,
)


def supervised_steps(bits: np.ndarray, mode: str, weighting: str = "uniform") -> np.ndarray:
    """The training loss weight of every step, float32: 0 where the label is not read (padding, or every step
    but the last in `final` mode), else 1 or, with `inverse_position` weighting, 1/t for the t-th real step."""
    real = bits != PAD
    supervised = real.copy() if mode == "running" else np.zeros_like(real)
    supervised[:, -1] = True  # the last step, always real: padding is in front
    if weighting == "uniform":
        return supervised.astype(np.float32)
    position = np.cumsum(real, axis=-1, dtype=np.float32)
    weights = np.divide(supervised, position, out=np.zeros(bits.shape, np.float32), where=supervised)
    return weights * np.float32(supervised.sum() / weights.sum())


def summary(parity: np.ndarray) -> dict:
    return {
        "share_odd_steps": float(parity.mean()),
        "share_odd_final": float(parity[:, -1].mean()),
    }


def main() -> None:
    params = load_params("targets", TargetsParams)
    metrics = {}
    for bits_file, parity_file, split in ((TRAIN_BITS, TRAIN_PARITY, "train"), (TEST_BITS, TEST_PARITY, "test")):
        bits = load_bits(bits_file)
        parity = running_parity(bits)
        save_array(parity_file, parity)
        metrics[split] = summary(parity)
        if split == "train":
            weights = supervised_steps(bits, params.mode, params.weighting)
            save_array(TRAIN_WEIGHTS, weights)
            metrics[split]["supervised_steps_per_sequence"] = float((weights > 0).sum(axis=1).mean())
    write_metrics("targets", metrics)


if __name__ == "__main__":
    main()
