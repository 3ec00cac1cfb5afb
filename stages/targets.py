"""Stage `targets`: the running parity of every prefix, and each training step's factor in the loss.

bits          [2 1 0 1 1]    (2: padding in front)
parity        [0 1 1 0 1]    (cumsum mod 2, padding counted as 0)
loss factors  [0 1 1 1 1]    targets.mode=running: every real step
              [0 0 0 0 1]    targets.mode=final: the last step only
              with targets.weighting=inverse_position, the t-th real step counts 1/t, rescaled to a mean of 1

Read and written a block of rows at a time, so memory stays bounded at any size.
"""

from pathlib import Path

import numpy as np

from parity_lstm.data.encoding import running_parity
from parity_lstm.data.files import (
    TEST_BITS,
    TEST_PARITY,
    TRAIN_BITS,
    TRAIN_LOSS_FACTORS,
    TRAIN_PARITY,
    VAL_BITS,
    VAL_PARITY,
    load_bits,
    read_blocks,
    row_writer,
    with_progress,
    write_metrics,
)
from parity_lstm.data.loss import inverse_position_scale, loss_factors
from parity_lstm.params import TargetsParams, load_params


def write_parity(bits: np.memmap, path: Path) -> dict:
    """Write the running parity of `bits` to `path`; return its summary."""
    odd_steps = odd_final = 0
    with row_writer(path, bits.shape, np.uint8) as write:
        for block in with_progress(read_blocks(bits), bits.size, f"targets {path}"):
            parity = running_parity(block)
            write(parity)
            odd_steps, odd_final = odd_steps + int(parity.sum()), odd_final + int(parity[:, -1].sum())
    return {"share_odd_steps": odd_steps / bits.size, "share_odd_final": odd_final / len(bits)}


def write_loss_factors(bits: np.memmap, params: TargetsParams) -> float:
    """Write the loss factors of the training steps; return the mean number of supervised steps per sequence."""
    scale = 1.0
    if params.weighting == "inverse_position":
        scale = inverse_position_scale(read_blocks(bits), bits.shape[1], params.mode)
    supervised = 0
    with row_writer(TRAIN_LOSS_FACTORS, bits.shape, np.float32) as write:
        for block in with_progress(read_blocks(bits), bits.size, f"targets {TRAIN_LOSS_FACTORS}"):
            factors = loss_factors(block, params.mode, params.weighting, scale)
            write(factors)
            supervised += int((factors > 0).sum())
    return supervised / len(bits)


def main() -> None:
    params = load_params("targets", TargetsParams)
    files = {"train": (TRAIN_BITS, TRAIN_PARITY), "val": (VAL_BITS, VAL_PARITY), "test": (TEST_BITS, TEST_PARITY)}
    bits = {name: load_bits(bits_file) for name, (bits_file, _) in files.items()}  # all checked before any write
    metrics = {name: write_parity(bits[name], parity_file) for name, (_, parity_file) in files.items()}
    metrics["train"]["supervised_steps_per_sequence"] = write_loss_factors(bits["train"], params)
    write_metrics("targets", metrics)


if __name__ == "__main__":
    main()
