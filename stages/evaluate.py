"""Stage `evaluate`: score the trained model on held-out sequences it never saw, at its length and longer.

step_accuracy          share of (sequence, step) parities predicted right
final_step_accuracy    share of sequences whose parity at the last step is right: the parity of the whole
sequence_accuracy      share of sequences with every step right
mean_final_confidence  mean probability the model gives the true parity at the last step
by_length              final-step and sequence accuracy on fresh sequences of each length of `evaluate.lengths`
by_range               Delétang et al.'s score over each range `low-high` of `evaluate.lengths`: the mean over its
                       lengths of the final-step accuracy
members                with `train.population` above 1, every member scored on the same fresh sequences: per length,
                       the members holding (final-step accuracy >= 0.999), their count, the median and the worst;
                       per range, each member's score, the median, the best and the worst. Member lists are strings,
                       member order: `dvc exp show` drops lists from metrics.
"""

import numpy as np

from parity_lstm.data.encoding import PAD
from parity_lstm.data.files import (
    METRICS_DIR,
    TEST_BITS,
    TEST_PARITY,
    load_bits,
    load_parity,
    write_metrics,
    write_text,
)
from parity_lstm.model import load_members
from parity_lstm.params import EvaluateParams, length_range, load_params
from parity_lstm.rates import HOLDS
from parity_lstm.scoring import accuracy_at_length, deletang_score, score
from parity_lstm.trained import TrainedModel, load_trained_model

ACCURACY_BY_POSITION = METRICS_DIR / "evaluate_accuracy_by_position.csv"
ACCURACY_BY_LENGTH = METRICS_DIR / "evaluate_accuracy_by_length.csv"
STATES = METRICS_DIR / "evaluate_states.csv"
# Decimals of metrics/evaluate.json's mean final confidence: finer than 10,000 test sequences tell it.
CONFIDENCE_DECIMALS = 5


def score_by_length(model: TrainedModel, params: EvaluateParams) -> dict[str, dict]:
    """Final-step and sequence accuracy on `sequences_per_length` fresh sequences of each length."""
    results = {}
    for length in lengths_of(params):
        final, whole = accuracy_at_length(
            model.weights[None], model.layout, length, params.sequences_per_length, params.seed, every_step=True
        )
        results[str(length)] = {"final_step_accuracy": float(final[0]), "sequence_accuracy": float(whole[0])}
    return results


def lengths_of(params: EvaluateParams) -> list[int]:
    return [length for length in params.lengths if isinstance(length, int)]


def ranges_of(params: EvaluateParams) -> list[str]:
    return [length for length in params.lengths if isinstance(length, str)]


def member_list(values) -> str:
    return " ".join(f"{value:.6g}" for value in values)


def score_members(members: np.ndarray, model: TrainedModel, params: EvaluateParams) -> dict[str, dict]:
    """Every member on the same fresh sequences as the model: per length, who holds; per range, each one's score."""
    results = {}
    for length in lengths_of(params):
        accuracy, _ = accuracy_at_length(members, model.layout, length, params.sequences_per_length, params.seed)
        results[str(length)] = {
            "holding": int((accuracy >= HOLDS).sum()),
            "members_holding": " ".join(map(str, np.flatnonzero(accuracy >= HOLDS))),
            "median": float(np.median(accuracy)),
            "worst": float(accuracy.min()),
            "final_step_accuracy": member_list(accuracy),
        }
    for lengths in ranges_of(params):
        scores = deletang_score(members, model.layout, length_range(lengths), params.sequences_per_length, params.seed)
        results[lengths] = {
            "median": float(np.median(scores)),
            "best": float(scores.max()),
            "worst": float(scores.min()),
            "score": member_list(scores),
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
    by_length = score_by_length(model, params)
    results = metrics | {"by_length": by_length}
    if ranges := ranges_of(params):
        sequences, seed = params.sequences_per_length, params.seed
        scores = {
            lengths: deletang_score(model.weights[None], model.layout, length_range(lengths), sequences, seed)
            for lengths in ranges
        }
        results["by_range"] = {lengths: {"score": float(score[0])} for lengths, score in scores.items()}
    members = load_members(model.layout)
    if len(members) > 1:
        results["members"] = score_members(members, model, params)
    write_metrics("evaluate", results)

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
    for lengths, scored in results.get("by_range", {}).items():
        print(f"score over lengths {lengths}: {scored['score']:.4f}")
    for length, scored in results.get("members", {}).items():
        if "holding" in scored:
            print(f"members holding at {length}: {scored['holding']}/{len(members)}")


if __name__ == "__main__":
    main()
