"""Predict the parity of bit strings with the trained model in models/; any length up to MAX_BITS.

    $ python -m tools.predict 1011001 0110          (or one sequence a line on stdin)
    1011001	0	0.9991	0
    0110	0	0.9995	0

One tab-separated line per sequence: the bits, the predicted parity, the model's confidence in it, the true
parity. A line that is not a non-empty string of 0 and 1 is reported on stderr and skipped; the exit code is
then 2.
"""

import sys

import numpy as np

from parity_lstm.data.encoding import running_parity
from parity_lstm.trained import TrainedModel, load_trained_model, predicted_odd

MAX_BITS = 100_000


def parse_bits(text: str) -> np.ndarray:
    """The bits of a string of 0 and 1, as uint8; ValueError naming the problem otherwise."""
    if not text:
        raise ValueError("empty sequence")
    if len(text) > MAX_BITS:
        raise ValueError(f"{len(text)} bits, more than the limit of {MAX_BITS}")
    if set(text) - {"0", "1"}:
        raise ValueError(f"{text[:40]!r} is not a string of 0 and 1")
    return np.frombuffer(text.encode(), np.uint8) - ord("0")


def predict_line(model: TrainedModel, bits: np.ndarray) -> str:
    probability_of_one = float(model.probability_of_one(bits[None])[-1, 0])
    predicted = int(predicted_odd(probability_of_one))
    confidence = probability_of_one if predicted else 1 - probability_of_one
    text = "".join(map(str, bits))
    return f"{text}\t{predicted}\t{confidence:.4f}\t{running_parity(bits)[-1]}"


def main(arguments: list[str]) -> int:
    sequences = arguments or [line.strip() for line in sys.stdin]
    model = load_trained_model()
    status = 0
    for number, text in enumerate(sequences, 1):
        try:
            bits = parse_bits(text)
        except ValueError as error:
            print(f"predict: sequence {number}: {error}", file=sys.stderr)
            status = 2
            continue
        print(predict_line(model, bits), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
