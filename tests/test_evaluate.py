import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from devkit.scratch_repo import REPO
from parity_lstm import scoring
from parity_lstm.data.encoding import one_hot_pairs, random_bits, running_parity
from parity_lstm.data.files import TEST_BITS, TEST_PARITY
from parity_lstm.model import Layout, save_members, save_model
from parity_lstm.params import EvaluateParams
from parity_lstm.scoring import score
from parity_lstm.trained import TrainedModel
from stages import evaluate
from stages.evaluate import score_by_length, score_members
from tests.conftest import flip_flop_weights

FLIP_FLOP = TrainedModel(Layout(1).flatten(flip_flop_weights()), Layout(1))
# A member that never learnt: every weight 0, so its probability of parity 1 is one half at every step: always even.
BLANK = np.zeros(Layout(1).size, np.float32)


def test_perfect_predictions_score_one():
    parity = np.array([[1, 1, 0], [0, 1, 1]], dtype=np.uint8)
    metrics, by_position = score(parity.astype(np.float32), parity)
    assert metrics == {
        "step_accuracy": 1.0,
        "final_step_accuracy": 1.0,
        "sequence_accuracy": 1.0,
        "mean_final_confidence": 1.0,
    }
    np.testing.assert_array_equal(by_position, [1.0, 1.0, 1.0])


def test_metrics_count_the_right_things():
    parity = np.array([[1, 1, 0], [0, 1, 1]], dtype=np.uint8)
    # Sequence 0: last step wrong with confidence 0.8 in the wrong class. Sequence 1: all right, 0.9 at the end.
    prob_of_one = np.array([[0.9, 0.7, 0.8], [0.2, 0.6, 0.9]], dtype=np.float32)
    metrics, by_position = score(prob_of_one, parity)
    assert metrics["step_accuracy"] == pytest.approx(5 / 6)
    assert metrics["final_step_accuracy"] == pytest.approx(0.5)
    assert metrics["sequence_accuracy"] == pytest.approx(0.5)
    assert metrics["mean_final_confidence"] == pytest.approx((0.2 + 0.9) / 2)
    np.testing.assert_allclose(by_position, [1.0, 1.0, 0.5])


def test_a_coin_flip_model_scores_one_half():
    parity = np.random.default_rng(0).integers(0, 2, (4000, 10), dtype=np.uint8)
    guesses = np.random.default_rng(1).integers(0, 2, parity.shape, dtype=np.uint8)
    metrics, _ = score(guesses.astype(np.float32), parity)
    assert metrics["final_step_accuracy"] == pytest.approx(0.5, abs=0.03)
    assert metrics["sequence_accuracy"] < 0.01


def test_the_flip_flop_model_is_exactly_right(flip_flop_model):
    bits = np.random.default_rng(0).integers(0, 2, (200, 60), dtype=np.uint8)
    metrics, _ = score(flip_flop_model.predict(one_hot_pairs(bits), verbose=0)[..., 0], running_parity(bits))
    assert metrics["sequence_accuracy"] == 1.0 and metrics["mean_final_confidence"] > 0.999


def test_lengths_far_beyond_training_are_scored_in_bounded_chunks(monkeypatch):
    params = EvaluateParams(lengths=[1, 7, 3000], sequences_per_length=30, seed=0)
    assert score_by_length(FLIP_FLOP, params) == {
        str(length): {"final_step_accuracy": 1.0, "sequence_accuracy": 1.0} for length in (1, 7, 3000)
    }
    shapes, forward = [], scoring.probability_of_one
    monkeypatch.setattr(scoring, "STEPS_PER_CALL", 10_000)
    monkeypatch.setattr(
        scoring, "probability_of_one", lambda *args, **kw: shapes.append(args[1].shape) or forward(*args, **kw)
    )
    score_by_length(FLIP_FLOP, params.model_copy(update={"lengths": [3000]}))
    assert shapes == [(3, 3000)] * 10


def constant(probability: float):
    """A forward pass whose every member gives `probability` of parity 1 after every step."""

    def forward(members, bits, layout, final_only=False):
        steps = 1 if final_only else bits.shape[1]
        return np.full((steps, len(bits), len(members)), probability, np.float32)

    return forward


def test_scoring_by_length_and_scoring_test_sequences_apply_one_rule_at_one_half(monkeypatch):
    """Just under 0.5 predicts even, exactly 0.5 predicts even, just over predicts odd: whatever the parity."""
    params = EvaluateParams(lengths=[5], sequences_per_length=400, seed=0)
    bits = random_bits(np.random.default_rng([0, 5]), 400, 5)  # the sequences score_by_length draws at length 5
    even = np.mean(running_parity(bits)[:, -1] == 0)
    for probability in (np.float32(0.5) - np.float32(2.0**-25), 0.5, 0.5000001):
        right_share = 1 - even if probability > 0.5 else even
        monkeypatch.setattr(scoring, "probability_of_one", constant(probability))
        by_length = score_by_length(FLIP_FLOP, params)["5"]["final_step_accuracy"]
        members = score_members(np.stack([FLIP_FLOP.weights] * 2), FLIP_FLOP, params)["5"]
        metrics, _ = score(np.full(bits.shape, probability, np.float32), running_parity(bits))
        assert by_length == pytest.approx(metrics["final_step_accuracy"]) == pytest.approx(right_share)
        assert members["median"] == members["worst"] == by_length


def test_a_wrong_model_scores_badly_at_length():
    weights = flip_flop_weights()
    weights[3] = -weights[3]  # the readout inverted: every step wrong
    weights[4] = -weights[4]
    result = score_by_length(
        TrainedModel(Layout(1).flatten(weights), Layout(1)),
        EvaluateParams(lengths=[100], sequences_per_length=20, seed=0),
    )
    assert result == {"100": {"final_step_accuracy": 0.0, "sequence_accuracy": 0.0}}


def test_each_member_is_scored_on_the_same_sequences_and_holds_or_not():
    """A hand-made population: a blank member, the flip-flop (right at any length), the blank again."""
    members = np.stack([BLANK, FLIP_FLOP.weights, BLANK])
    params = EvaluateParams(lengths=[50, 2000, "41-60"], sequences_per_length=200, seed=3)
    scored = score_members(members, FLIP_FLOP, params)
    even = [
        float(np.mean(running_parity(bits)[:, -1] == 0))
        for bits in (random_bits(np.random.default_rng([3, length]), 200, length) for length in (50, 2000))
    ]
    for length, blank in zip(("50", "2000"), even, strict=True):
        assert scored[length] == {
            "holding": 1,
            "members_holding": "1",
            "median": blank,
            "worst": blank,
            "final_step_accuracy": f"{blank:.6g} 1 {blank:.6g}",
        }
    # The blank member as the selected model: its final step right where the parity is even, every step right almost
    # never (only where every bit is 0).
    blank_model = score_by_length(TrainedModel(BLANK, Layout(1)), params.model_copy(update={"lengths": [50, 2000]}))
    assert blank_model == {
        length: {"final_step_accuracy": blank, "sequence_accuracy": 0.0}
        for length, blank in zip(("50", "2000"), even, strict=True)
    }
    # Delétang's score: the mean over lengths 41-60 of the final-step accuracy, each on its own fresh sequences.
    ranged = scored["41-60"]
    assert ranged["best"] == 1.0 and ranged["worst"] == ranged["median"] == pytest.approx(0.5, abs=0.03)
    blank_score = np.mean(
        [np.mean(running_parity(random_bits(np.random.default_rng([3, n]), 200, n))[:, -1] == 0) for n in range(41, 61)]
    )
    assert ranged["score"].split() == [f"{blank_score:.6g}", "1", f"{blank_score:.6g}"]


def test_cell_state_flips_with_every_one_bit():
    bits = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 1], np.uint8)
    hidden, cells = FLIP_FLOP.states(bits[None])
    assert hidden.shape == cells.shape == (1, 10, 1)
    hidden, cells = hidden[0], cells[0]
    odd = running_parity(bits) == 1
    assert np.all(cells[odd, 0] > 0.9) and np.all(cells[~odd, 0] < 0.1)


def test_padding_does_not_count_in_metrics():
    parity = np.array([[0, 0, 1, 1], [0, 1, 0, 0]], dtype=np.uint8)
    real = np.array([[False, False, True, True], [True, True, True, True]])
    wrong_on_padding = np.where(real, parity, 1 - parity).astype(np.float32)
    metrics, by_position = score(wrong_on_padding, parity, real)
    assert metrics["step_accuracy"] == metrics["sequence_accuracy"] == metrics["final_step_accuracy"] == 1.0
    np.testing.assert_array_equal(by_position, [1.0, 1.0, 1.0, 1.0])
    metrics, _ = score(wrong_on_padding, parity)  # the same outputs, padding counted as real
    assert metrics["step_accuracy"] == 0.75 and metrics["sequence_accuracy"] == 0.5


def test_the_stage_writes_its_metrics_and_the_files_its_plots_draw(tmp_path, monkeypatch):
    """`python -m stages.evaluate` in a folder of its own: the flip-flop model on 40 test sequences of 12 bits."""
    monkeypatch.chdir(tmp_path)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["evaluate"] |= {"lengths": [5, 30], "sequences_per_length": 20}
    Path("params.yaml").write_text(yaml.safe_dump(params))
    for folder in ("data", "models", "metrics"):
        Path(folder).mkdir()
    bits = random_bits(np.random.default_rng(0), 40, 12)
    np.save(TEST_BITS, bits)
    np.save(TEST_PARITY, running_parity(bits))
    *recurrent, dense_kernel, dense_bias = flip_flop_weights()
    # Its logits shrunk: the same answers, a confidence near one half whose decimals the metric rounds.
    model = [*recurrent, dense_kernel / 64, dense_bias / 64]
    save_model(model, Layout(1), Path("models/model.keras"))
    save_members(Layout(1).flatten(model)[None])
    evaluate.main()

    metrics = json.loads(Path("metrics/evaluate.json").read_text())
    assert metrics["final_step_accuracy"] == metrics["sequence_accuracy"] == 1 and list(metrics["by_length"]) == [
        "5",
        "30",
    ]
    confidence = metrics["mean_final_confidence"]
    assert 0.5 < confidence < 0.9 and confidence == round(confidence, 5)  # the decimals the file keeps
    with open("metrics/evaluate_accuracy_by_position.csv") as by_position:
        assert [row["position"] for row in csv.DictReader(by_position)] == [str(step) for step in range(1, 13)]
    with open("metrics/evaluate_accuracy_by_length.csv") as by_length:
        assert [row["length"] for row in csv.DictReader(by_length)] == ["5", "30"]
    with open("metrics/evaluate_states.csv") as states:
        rows = list(csv.DictReader(states))
    # The first test sequence, step by step: its bits, their running parity, and the states after each bit.
    assert [int(row["step"]) for row in rows] == list(range(1, 13))
    assert [int(row["bit"]) for row in rows] == bits[0].tolist()
    assert [int(row["parity"]) for row in rows] == running_parity(bits[0]).tolist()
    # A population of one: no member block, no range. Of two, each member scored, and a range scored as Delétang's.
    assert {"members", "by_range"}.isdisjoint(metrics)
    params["evaluate"]["lengths"] = [5, "6-8"]
    Path("params.yaml").write_text(yaml.safe_dump(params))
    save_members(np.stack([BLANK, Layout(1).flatten(model)]))
    evaluate.main()
    metrics = json.loads(Path("metrics/evaluate.json").read_text())
    assert metrics["by_range"] == {"6-8": {"score": 1.0}}
    assert metrics["members"]["5"]["members_holding"] == "1" and metrics["members"]["6-8"]["best"] == 1.0
