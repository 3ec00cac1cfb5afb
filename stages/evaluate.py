"""Stage `evaluate`: score the trained model on the held-out sequences it never saw.

    step_accuracy          share of (sequence, step) parities predicted right
    final_step_accuracy    share of sequences whose parity at the last step is right: the parity of the whole
    sequence_accuracy      share of sequences with every step right
    mean_final_confidence  mean probability the model gives the true parity at the last step
"""

import keras
import numpy as np

from stages.common import (
    METRICS_DIR,
    MODEL_FILE,
    TEST_BITS,
    TEST_PARITY,
    load_array,
    one_hot_pairs,
    write_metrics,
    write_text,
)

ACCURACY_BY_POSITION = METRICS_DIR / "evaluate_accuracy_by_position.csv"


def score(probabilities: np.ndarray, parity: np.ndarray) -> tuple[dict, np.ndarray]:
    """Metrics and per-position accuracy of softmax outputs (count, seq_len, 2) against parity (count, seq_len)."""
    # Pair slot 0 holds the probability of parity 1, as in the [x, 1 - x] encoding.
    prob_of_true_parity = np.where(parity == 1, probabilities[..., 0], probabilities[..., 1])
    correct = prob_of_true_parity > 0.5
    metrics = {
        "step_accuracy": float(correct.mean()),
        "final_step_accuracy": float(correct[:, -1].mean()),
        "sequence_accuracy": float(correct.all(axis=1).mean()),
        "mean_final_confidence": float(prob_of_true_parity[:, -1].mean()),
    }
    return metrics, correct.mean(axis=0)


def main() -> None:
    model = keras.models.load_model(MODEL_FILE, compile=False)
    probabilities = model.predict(one_hot_pairs(load_array(TEST_BITS)), batch_size=1024, verbose=0)
    metrics, accuracy_by_position = score(probabilities, load_array(TEST_PARITY))
    write_metrics("evaluate", metrics)
    rows = "".join(f"{position},{accuracy:.6f}\n" for position, accuracy in enumerate(accuracy_by_position, 1))
    write_text(ACCURACY_BY_POSITION, "position,accuracy\n" + rows)
    print(", ".join(f"{name} {value:.4f}" for name, value in metrics.items()))


if __name__ == "__main__":
    main()
