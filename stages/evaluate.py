"""Stage `evaluate`: score the trained model on held-out sequences it never saw, at its length and longer.

step_accuracy          share of (sequence, step) parities predicted right
final_step_accuracy    share of sequences whose parity at the last step is right: the parity of the whole
sequence_accuracy      share of sequences with every step right
mean_final_confidence  mean probability the model gives the true parity at the last step
by_length              final-step and sequence accuracy on fresh sequences of each `evaluate.lengths`
"""

from collections.abc import Callable

import numpy as np

from parity_lstm.data.encoding import PAD, random_bits, running_parity
from parity_lstm.data.files import (
    METRICS_DIR,
    TEST_BITS,
    TEST_PARITY,
    load_bits,
    load_parity,
    write_metrics,
    write_text,
)
from parity_lstm.numerics.forward import load_trained_model, predicted_odd
from parity_lstm.params import EvaluateParams, load_params

ACCURACY_BY_POSITION = METRICS_DIR / "evaluate_accuracy_by_position.csv"
ACCURACY_BY_LENGTH = METRICS_DIR / "evaluate_accuracy_by_length.csv"
STATES = METRICS_DIR / "evaluate_states.csv"
# Decimals of metrics/evaluate.json's mean final confidence: finer than 10,000 test sequences tell it.
CONFIDENCE_DECIMALS = 5
# Steps scored per call when testing long sequences: bounds memory whatever the length.
STEPS_PER_CALL = 10_000_000


def score(
    probability_of_one: np.ndarray, parity: np.ndarray, real: np.ndarray | None = None
) -> tuple[dict, np.ndarray]:
    """Metrics and per-position accuracy of the probabilities of parity 1 (count, seq_len) against parity (count,
    seq_len), counting only the `real` steps (default: all; padding is not real)."""
    real = np.ones(parity.shape, bool) if real is None else real
    odd = parity == 1
    correct = predicted_odd(probability_of_one) == odd
    metrics = {
        "step_accuracy": float(correct[real].mean()),
        # Padding is in front, so the last step is always real.
        "final_step_accuracy": float(correct[:, -1].mean()),
        "sequence_accuracy": float((correct | ~real).all(axis=1).mean()),
        # The probability the model gives the true parity.
        "mean_final_confidence": float(np.where(odd, probability_of_one, 1 - probability_of_one)[:, -1].mean()),
    }
    # Positions that are padding in every sequence have no accuracy.
    with np.errstate(invalid="ignore"):
        by_position = (correct & real).sum(axis=0) / real.sum(axis=0)
    return metrics, by_position


# Bits (count, steps) -> the probability of parity 1, step-major (steps, count), as `TrainedModel` gives it.
ProbabilityOfOne = Callable[[np.ndarray], np.ndarray]


def score_by_length(probability_of_one: ProbabilityOfOne, params: EvaluateParams) -> dict[str, dict]:
    """Final-step and sequence accuracy on `sequences_per_length` fresh sequences of each length, in chunks."""
    results = {}
    for length in params.lengths:
        rng = np.random.default_rng([params.seed, length])
        chunk = max(1, STEPS_PER_CALL // length)
        final_right = sequences_right = 0
        for start in range(0, params.sequences_per_length, chunk):
            bits = random_bits(rng, min(chunk, params.sequences_per_length - start), length)
            correct = predicted_odd(probability_of_one(bits)) == (running_parity(bits).T == 1)
            final_right += int(correct[-1].sum())
            sequences_right += int(correct.all(axis=0).sum())
        results[str(length)] = {
            "final_step_accuracy": final_right / params.sequences_per_length,
            "sequence_accuracy": sequences_right / params.sequences_per_length,
        }
    return results


def write_csv(path, header: list[str], rows) -> None:
    lines = [",".join(header)] + [",".join(f"{value:.6g}" for value in row) for row in rows]
    write_text(path, "\n".join(lines) + "\n")


def main() -> None:
    params = load_params("evaluate", EvaluateParams)
    model = load_trained_model()
    bits = load_bits(TEST_BITS)
    parity = load_parity(TEST_PARITY, bits)
    metrics, accuracy_by_position = score(model.probability_of_one(bits).T, parity, real=bits != PAD)
    # Accuracies are exact counts; the confidence's last digits could follow the model's last bits, which differ
    # between CPUs (docs/reproducibility.md).
    metrics["mean_final_confidence"] = round(metrics["mean_final_confidence"], CONFIDENCE_DECIMALS)
    by_length = score_by_length(model.probability_of_one, params)
    write_metrics("evaluate", metrics | {"by_length": by_length})

    write_csv(ACCURACY_BY_POSITION, ["position", "accuracy"], enumerate(accuracy_by_position, 1))
    write_csv(
        ACCURACY_BY_LENGTH,
        ["length", "final_step_accuracy", "sequence_accuracy"],
        ((int(length), r["final_step_accuracy"], r["sequence_accuracy"]) for length, r in by_length.items()),
    )
    # The flip-flop made visible: states along the first held-out sequence (first unit; the reference has one).
    hidden, cells = (state[0] for state in model.states(bits[None, 0]))
    write_csv(
        STATES,
        ["step", "bit", "parity", "cell_state", "hidden_state"],
        zip(range(1, len(bits[0]) + 1), bits[0], parity[0], cells[:, 0], hidden[:, 0], strict=True),
    )
    print(", ".join(f"{name} {value:.4f}" for name, value in metrics.items()))
    print(
        "final-step accuracy by length", ", ".join(f"{n}: {r['final_step_accuracy']:.4f}" for n, r in by_length.items())
    )


if __name__ == "__main__":
    main()
