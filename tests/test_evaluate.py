import numpy as np
import pytest

from stages.common import one_hot_pairs
from stages.evaluate import score


def test_perfect_predictions_score_one():
    parity = np.array([[1, 1, 0], [0, 1, 1]], dtype=np.uint8)
    metrics, by_position = score(one_hot_pairs(parity), parity)
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
    probabilities = np.stack([prob_of_one, 1 - prob_of_one], axis=-1)
    metrics, by_position = score(probabilities, parity)
    assert metrics["step_accuracy"] == pytest.approx(5 / 6)
    assert metrics["final_step_accuracy"] == pytest.approx(0.5)
    assert metrics["sequence_accuracy"] == pytest.approx(0.5)
    assert metrics["mean_final_confidence"] == pytest.approx((0.2 + 0.9) / 2)
    np.testing.assert_allclose(by_position, [1.0, 1.0, 0.5])


def test_a_coin_flip_model_scores_one_half():
    parity = np.random.default_rng(0).integers(0, 2, (4000, 10), dtype=np.uint8)
    guesses = np.random.default_rng(1).integers(0, 2, parity.shape, dtype=np.uint8)
    metrics, _ = score(one_hot_pairs(guesses), parity)
    assert metrics["final_step_accuracy"] == pytest.approx(0.5, abs=0.03)
    assert metrics["sequence_accuracy"] < 0.01
