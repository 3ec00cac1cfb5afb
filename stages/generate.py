"""Stage `generate`: random bit sequences for training, validation and a held-out test set, as uint8 arrays.

data.count=2, data.seq_len=5                  ->  [[1 0 1 1 0]
                                                   [0 0 1 0 1]]
data.count=2, data.seq_len=5, data.min_len=3  ->  [[2 2 1 0 1]     lengths drawn from [3, 5],
                                                   [0 1 1 0 1]]     padded in front with PAD (2)

Written a block of rows at a time, so memory stays bounded at any size; the block size never changes a bit.
"""

from collections import Counter

import numpy as np

from parity_lstm.data.encoding import PAD
from parity_lstm.data.files import row_writer, with_progress, write_metrics
from parity_lstm.data.sampling import sequences, splits
from parity_lstm.params import DataParams, load_params


def tally(bits: np.ndarray) -> Counter:
    """Counts over a block of rows that add up across blocks."""
    ones_per_sequence = (bits == 1).sum(axis=1)
    return Counter(
        sequences=len(bits),
        real_steps=int((bits != PAD).sum()),
        ones=int(ones_per_sequence.sum()),
        odd_sequences=int((ones_per_sequence % 2).sum()),
    )


def summary(totals: Counter, seq_len: int) -> dict:
    return {
        "count": totals["sequences"],
        "seq_len": seq_len,
        "mean_length": totals["real_steps"] / totals["sequences"],
        "share_of_ones": totals["ones"] / totals["real_steps"],
        "share_odd_parity": totals["odd_sequences"] / totals["sequences"],
    }


def main() -> None:
    params = load_params("data", DataParams)
    metrics = {}
    for path, seed, count in splits(params):
        totals = Counter()
        with row_writer(path, (count, params.seq_len), np.uint8) as write:
            for bits in with_progress(sequences(seed, count, params), count * params.seq_len, f"generate {path}"):
                write(bits)
                totals.update(tally(bits))
        metrics[path.stem.removesuffix("_bits")] = summary(totals, params.seq_len)
    write_metrics("generate", metrics)


if __name__ == "__main__":
    main()
