"""The reference program's method, re-implemented as the benchmark's baseline (see docs/speed.md).

Deliberately slow where the original is: bits drawn one at a time with `random.choice` into nested lists of
[x, not x] pairs (an int64 array), targets built sequence by sequence from `np.cumsum`, and a default
`model.fit` (no XLA, one step per call). Seeded here only so that the baseline's accuracy is repeatable.
Writes its phase timings and held-out accuracy to a JSON file; the held-out scoring is not timed.

    python -m bench.reference SEED TEST_BITS.npy OUT.json
"""

import json
import random
import sys
import time
from pathlib import Path

import numpy as np

SEQ_LEN, COUNT = 50, 100_000


def pair(x):
    return [x, int(not x)]


def main(seed: int, test_bits_file: Path, out: Path) -> None:
    started = time.perf_counter()
    import keras

    from parity_lstm.data.encoding import one_hot_pairs, running_parity
    from parity_lstm.data.files import load_bits
    from parity_lstm.scoring import score

    random.seed(seed)
    keras.utils.set_random_seed(seed)
    imported = time.perf_counter()

    training = np.array([[pair(random.choice([0, 1])) for _ in range(SEQ_LEN)] for _ in range(COUNT)])
    target = np.array([[pair(x) for x in np.cumsum(example[:, 0]) % 2] for example in training])
    data_built = time.perf_counter()

    model = keras.Sequential(
        [
            keras.Input((SEQ_LEN, 2), dtype="float32"),
            keras.layers.LSTM(1, return_sequences=True),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(training, target, epochs=10, batch_size=128, verbose=2)
    trained = time.perf_counter()

    # The original "evaluates" by predicting its own training set; kept for a faithful end-to-end time.
    model.predict(training, verbose=0)
    finished = time.perf_counter()

    test_bits = load_bits(test_bits_file)
    metrics, _ = score(model.predict(one_hot_pairs(test_bits), verbose=0)[..., 0], running_parity(test_bits))
    result = {
        "import_s": imported - started,
        "data_s": data_built - imported,
        "train_s": trained - data_built,
        "predict_s": finished - trained,
        "total_s": finished - started,
        "data_dtype": str(training.dtype),
        "data_bytes": training.nbytes + target.nbytes,
        "held_out": metrics,
    }
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
