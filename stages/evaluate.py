"""Stage `evaluate`: score the trained model on held-out sequences it never saw, at its length and longer.

step_accuracy          share of (sequence, step) parities predicted right
final_step_accuracy    share of sequences whose parity at the last step is right: the parity of the whole
sequence_accuracy      share of sequences with every step right
mean_final_confidence  mean probability the model gives the true parity at the last step
by_length              final-step and sequence accuracy on fresh sequences of each `evaluate.lengths`
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages.encoding import PAD, one_hot_pairs, random_bits, running_parity
from stages.files import (
    METRICS_DIR,
    TEST_BITS,
    TEST_PARITY,
    load_bits,
    load_parity,
    write_metrics,
    write_text,
)
from stages.model_file import MODEL_FILE, load_reference_weights
from stages.params import EvaluateParams, load_params

ACCURACY_BY_POSITION = METRICS_DIR / "evaluate_accuracy_by_position.csv"
ACCURACY_BY_LENGTH = METRICS_DIR / "evaluate_accuracy_by_length.csv"
STATES = METRICS_DIR / "evaluate_states.csv"
# Decimals of metrics/evaluate.json's mean final confidence: finer than 10,000 test sequences tell it.
CONFIDENCE_DECIMALS = 5
# Steps scored per call when testing long sequences: bounds memory whatever the length, and makes each default
# length one call: the time goes into the loop over steps, so fewer, wider calls are faster.
STEPS_PER_CALL = 10_000_000
# Steps whose input term is computed in one product.
BLOCK_STEPS = 256


def sigmoid_of_negated(values: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(values)), the sigmoid of -values, in place: no temporary array. Where exp overflows to inf the
    sigmoid is 0, as it should be: callers silence numpy's overflow warning around it (once, not once a call)."""
    np.exp(values, out=values)
    values += 1
    return np.reciprocal(values, out=values)


@dataclass(frozen=True)
class TrainedModel:
    """The reference architecture, LSTM(units, return_sequences=True) -> Dense(2, softmax), run by numpy.

    Scoring needs no TensorFlow, whose import alone takes seconds, and Keras' own numpy backend steps the LSTM
    through its layer machinery, many times slower. The same arithmetic as Keras' LSTM cell, gates in its order
    i, f, c, o; equal to Keras on TensorFlow to 1e-6 (tested).
    """

    kernel: np.ndarray  # (2, 4 * units)
    recurrent_kernel: np.ndarray  # (units, 4 * units)
    bias: np.ndarray  # (4 * units,)
    dense_kernel: np.ndarray  # (units, 2)
    dense_bias: np.ndarray  # (2,)

    @property
    def weights(self) -> list[np.ndarray]:
        """In the order of Keras' `model.get_weights()`."""
        return [self.kernel, self.recurrent_kernel, self.bias, self.dense_kernel, self.dense_bias]

    def states(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hidden and cell state after each step of pair-encoded `inputs` (count, steps, 2): (count, steps, units)."""
        hidden, cells = self._states(inputs)
        return hidden.transpose(2, 0, 1), cells.transpose(2, 0, 1)

    def _states(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The states step-major, (steps, units, count): each step reads and writes contiguous rows.

        The time goes into numpy's overhead per call, step after step, so a step makes few calls, on contiguous
        arrays, in place. The gates are gate-major, (4 * units, count), and negated: the sigmoid of every gate is
        then 1 / (1 + exp(gates)), with no negation a step, and the candidate's tanh comes out negated. Negating is
        exact, so these are the numbers of the plain formulas.
        """
        count, steps, _ = inputs.shape
        units = len(self.recurrent_kernel)
        kernel, recurrent, bias = -self.kernel.T, -self.recurrent_kernel.T, -self.bias[:, None]
        hidden, cells = np.empty((2, steps, units, count), np.float32)
        h = c = np.zeros((units, count), np.float32)
        # With one unit the recurrent product is a broadcast multiply: the same numbers, at a third of the cost.
        times_recurrent = np.multiply if units == 1 else np.matmul
        recurrent_term = np.empty((4 * units, count), np.float32)
        candidate = np.empty((units, count), np.float32)
        with np.errstate(over="ignore"):  # exp(gates) overflows to inf for saturated gates: sigmoid 0, as it should
            for start in range(0, steps, BLOCK_STEPS):
                # The input term of a block of steps in one product, step-major: (block, 4 * units, count). The
                # inputs are made step-major first: a product over a transposed view is slower than the copy.
                block = kernel @ np.ascontiguousarray(inputs[:, start : start + BLOCK_STEPS].transpose(1, 2, 0))
                block += bias
                for step, gates in enumerate(block, start):
                    gates += times_recurrent(recurrent, h, out=recurrent_term)
                    np.tanh(gates[2 * units : 3 * units], out=candidate)  # -tanh of the candidate
                    sigmoid_of_negated(gates)  # i, f, (unused), o
                    c = np.multiply(gates[units : 2 * units], c, out=cells[step])
                    candidate *= gates[:units]
                    c -= candidate
                    h = np.tanh(c, out=hidden[step])
                    h *= gates[3 * units :]
        return hidden, cells

    def probability_of_one(self, inputs: np.ndarray) -> np.ndarray:
        """The softmax's slot 0, the probability of parity 1, step-major: (steps, count) for pair-encoded `inputs`
        (count, steps, 2) of any length."""
        # Over two classes, softmax is the sigmoid of the difference of the logits: no reduction over a last axis
        # of 2, which numpy does slowly. Computed step-major, in place.
        hidden = self._states(inputs)[0]
        weights = self.dense_kernel[:, 0] - self.dense_kernel[:, 1]
        negated = np.tensordot(-weights, hidden, axes=(0, 1))  # (steps, count)
        negated -= self.dense_bias[0] - self.dense_bias[1]
        with np.errstate(over="ignore"):
            return sigmoid_of_negated(negated)

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        """Softmax outputs (count, steps, 2) for pair-encoded `inputs` (count, steps, 2) of any length."""
        probability_of_one = self.probability_of_one(inputs).T
        probabilities = np.empty((*probability_of_one.shape, 2), np.float32)
        probabilities[..., 0] = probability_of_one
        np.subtract(1, probability_of_one, out=probabilities[..., 1])
        return probabilities


def load_trained_model(path: Path = MODEL_FILE) -> TrainedModel:
    """The model file's weights, ready to score; no code from the file is run."""
    return TrainedModel(*load_reference_weights(path))


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


# Pair-encoded inputs (count, steps, 2) -> softmax outputs (count, steps, 2): a Keras model or a `TrainedModel`.
Forward = Callable[[np.ndarray], np.ndarray]
# Pair-encoded inputs (count, steps, 2) -> the probability of parity 1, step-major (steps, count), as
# `TrainedModel.probability_of_one` gives it.
ProbabilityOfOne = Callable[[np.ndarray], np.ndarray]


def score_by_length(probability_of_one: ProbabilityOfOne, params: EvaluateParams) -> dict[str, dict]:
    """Final-step and sequence accuracy on `sequences_per_length` fresh sequences of each length, in chunks.
    Step-major, so no (count, steps, 2) array is made: the long lengths' largest cost."""
    results = {}
    for length in params.lengths:
        rng = np.random.default_rng([params.seed, length])
        chunk = max(1, STEPS_PER_CALL // length)
        final_right = sequences_right = 0
        for start in range(0, params.sequences_per_length, chunk):
            bits = random_bits(rng, min(chunk, params.sequences_per_length - start), length)
            odd = running_parity(bits).T == 1
            one = probability_of_one(one_hot_pairs(bits))
            # As `probability_of_truth(...) > 0.5`: the softmax's slot 1 is 1 - p rounded to float32, not p < 0.5.
            correct = np.where(odd, one > 0.5, 1 - one > 0.5)  # no padding here
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
    metrics, accuracy_by_position = score(model(one_hot_pairs(bits)), parity, real=bits != PAD)
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
    hidden, cells = (state[0] for state in model.states(one_hot_pairs(bits[None, 0])))
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
