"""Stage `evaluate`: score the trained model on held-out sequences it never saw, at its length and longer.

step_accuracy          share of (sequence, step) parities predicted right
final_step_accuracy    share of sequences whose parity at the last step is right: the parity of the whole
sequence_accuracy      share of sequences with every step right
mean_final_confidence  mean probability the model gives the true parity at the last step
by_length              final-step and sequence accuracy on fresh sequences of each `evaluate.lengths`
"""

from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from stages.common import (
    METRICS_DIR,
    MODEL_FILE,
    PAD,
    TEST_BITS,
    TEST_PARITY,
    EvaluateParams,
    bad_input,
    load_bits,
    load_params,
    load_parity,
    one_hot_pairs,
    random_bits,
    running_parity,
    write_metrics,
    write_text,
)

ACCURACY_BY_POSITION = METRICS_DIR / "evaluate_accuracy_by_position.csv"
ACCURACY_BY_LENGTH = METRICS_DIR / "evaluate_accuracy_by_length.csv"
STATES = METRICS_DIR / "evaluate_states.csv"
# Bits scored per predict call when testing long sequences: bounds memory whatever the length.
STEPS_PER_CALL = 4_000_000


def load_trained_model(path: Path = MODEL_FILE) -> keras.Model:
    """The trained model, in Keras' safe mode (no code from the file), checked to take bit pairs."""
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except (OSError, ValueError) as error:
        raise bad_input(path, f"cannot be loaded ({error})") from None
    if model.input_shape[-1] != 2:
        raise bad_input(path, f"takes inputs of shape {model.input_shape}, not bit pairs (..., 2)")
    return model


def probability_of_truth(probabilities: np.ndarray, parity: np.ndarray) -> np.ndarray:
    """The probability the model gives the true parity, per step; above 0.5 means right."""
    # Pair slot 0 holds the probability of parity 1, as in the [x, 1 - x] encoding.
    return np.where(parity == 1, probabilities[..., 0], probabilities[..., 1])


def score(probabilities: np.ndarray, parity: np.ndarray, real: np.ndarray | None = None) -> tuple[dict, np.ndarray]:
    """Metrics and per-position accuracy of softmax outputs (count, seq_len, 2) against parity (count, seq_len),
    counting only the `real` steps (default: all; padding is not real)."""
    real = np.ones(parity.shape, bool) if real is None else real
    correct = probability_of_truth(probabilities, parity) > 0.5
    metrics = {
        "step_accuracy": float(correct[real].mean()),
        # Padding is in front, so the last step is always real.
        "final_step_accuracy": float(correct[:, -1].mean()),
        "sequence_accuracy": float((correct | ~real).all(axis=1).mean()),
        "mean_final_confidence": float(probability_of_truth(probabilities[:, -1], parity[:, -1]).mean()),
    }
    # Positions that are padding in every sequence have no accuracy.
    with np.errstate(invalid="ignore"):
        by_position = (correct & real).sum(axis=0) / real.sum(axis=0)
    return metrics, by_position


Forward = Callable[[np.ndarray], np.ndarray]


def forward_pass(model: keras.Model) -> Forward:
    """Softmax outputs for a batch of pair-encoded sequences of any size and length, traced once.

    `model.predict` retraces for every new shape; one generic signature serves every test length.
    """
    call = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec((None, None, 2))])
    return lambda inputs: call(inputs).numpy()


def score_by_length(forward: Forward, params: EvaluateParams) -> dict[str, dict]:
    """Final-step and sequence accuracy on `sequences_per_length` fresh sequences of each length, in chunks."""
    results = {}
    for length in params.lengths:
        rng = np.random.default_rng([params.seed, length])
        chunk = max(1, STEPS_PER_CALL // length)
        final_right = sequences_right = 0
        for start in range(0, params.sequences_per_length, chunk):
            bits = random_bits(rng, min(chunk, params.sequences_per_length - start), length)
            parity = running_parity(bits)
            correct = probability_of_truth(forward(one_hot_pairs(bits)), parity) > 0.5  # no padding here
            final_right += int(correct[:, -1].sum())
            sequences_right += int(correct.all(axis=1).sum())
        results[str(length)] = {
            "final_step_accuracy": final_right / params.sequences_per_length,
            "sequence_accuracy": sequences_right / params.sequences_per_length,
        }
    return results


def lstm_states(model: keras.Model, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hidden and cell state of the LSTM after each bit of one sequence, each (seq_len, units)."""
    # The LSTM layer returns only its last state; stepping its cell by hand exposes every one.
    cell = model.layers[0].cell
    inputs = one_hot_pairs(bits[None, :])
    state = [np.zeros((1, cell.units), np.float32)] * 2
    hidden, cells = [], []
    for step in range(len(bits)):
        _, state = cell(inputs[:, step], state)
        hidden.append(keras.ops.convert_to_numpy(state[0])[0])
        cells.append(keras.ops.convert_to_numpy(state[1])[0])
    return np.array(hidden), np.array(cells)


def write_csv(path, header: list[str], rows) -> None:
    lines = [",".join(header)] + [",".join(f"{value:.6g}" for value in row) for row in rows]
    write_text(path, "\n".join(lines) + "\n")


def main() -> None:
    params = load_params("evaluate", EvaluateParams)
    model = load_trained_model()
    forward = forward_pass(model)
    bits = load_bits(TEST_BITS)
    parity = load_parity(TEST_PARITY, bits)
    metrics, accuracy_by_position = score(forward(one_hot_pairs(bits)), parity, real=bits != PAD)
    by_length = score_by_length(forward, params)
    write_metrics("evaluate", metrics | {"by_length": by_length})

    write_csv(ACCURACY_BY_POSITION, ["position", "accuracy"], enumerate(accuracy_by_position, 1))
    write_csv(
        ACCURACY_BY_LENGTH,
        ["length", "final_step_accuracy", "sequence_accuracy"],
        ((int(length), r["final_step_accuracy"], r["sequence_accuracy"]) for length, r in by_length.items()),
    )
    # The flip-flop made visible: states along the first held-out sequence (first unit; the reference has one).
    hidden, cells = lstm_states(model, bits[0])
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
