import keras
import numpy as np
import pytest

from stages.encoding import one_hot_pairs, running_parity
from stages.evaluate import TrainedModel, load_trained_model, score, score_by_length
from stages.model_file import save_model
from stages.params import EvaluateParams
from stages.train import reference_model
from tests.conftest import flip_flop_weights

FLIP_FLOP = TrainedModel(*flip_flop_weights())


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


def test_the_flip_flop_model_is_exactly_right(flip_flop_model):
    bits = np.random.default_rng(0).integers(0, 2, (200, 60), dtype=np.uint8)
    metrics, _ = score(flip_flop_model.predict(one_hot_pairs(bits), verbose=0), running_parity(bits))
    assert metrics["sequence_accuracy"] == 1.0 and metrics["mean_final_confidence"] > 0.999


def test_lengths_far_beyond_training_are_scored_in_bounded_chunks(monkeypatch):
    params = EvaluateParams(lengths=[1, 7, 3000], sequences_per_length=30, seed=0)
    forward = FLIP_FLOP.probability_of_one
    assert score_by_length(forward, params) == {
        str(length): {"final_step_accuracy": 1.0, "sequence_accuracy": 1.0} for length in (1, 7, 3000)
    }
    shapes = []
    monkeypatch.setattr("stages.evaluate.STEPS_PER_CALL", 10_000)
    score_by_length(lambda x: shapes.append(x.shape) or forward(x), params.model_copy(update={"lengths": [3000]}))
    assert shapes == [(3, 3000, 2)] * 10


def test_scoring_by_length_decides_right_and_wrong_as_scoring_the_softmax_does():
    # Just under 0.5 for parity 1 is wrong; for parity 0 the softmax's slot 1 holds 1 - p, which float32 rounds to
    # exactly 0.5: not above 0.5, so wrong too (p < 0.5 would call it right).
    just_under_half = np.float32(0.5) - np.float32(2.0**-25)
    assert 1 - just_under_half == 0.5
    params = EvaluateParams(lengths=[5], sequences_per_length=40, seed=0)
    result = score_by_length(lambda inputs: np.full(inputs.shape[1::-1], just_under_half), params)
    assert result == {"5": {"final_step_accuracy": 0.0, "sequence_accuracy": 0.0}}
    bits = np.random.default_rng(0).integers(0, 2, (40, 5), dtype=np.uint8)
    softmax = np.stack(np.broadcast_arrays(just_under_half, 1 - just_under_half), axis=-1)
    metrics, _ = score(np.broadcast_to(softmax, (40, 5, 2)), running_parity(bits))
    assert metrics["final_step_accuracy"] == metrics["sequence_accuracy"] == 0.0


def test_a_wrong_model_scores_badly_at_length():
    weights = flip_flop_weights()
    weights[3] = -weights[3]  # the readout inverted: every step wrong
    weights[4] = -weights[4]
    result = score_by_length(
        TrainedModel(*weights).probability_of_one, EvaluateParams(lengths=[100], sequences_per_length=20, seed=0)
    )
    assert result == {"100": {"final_step_accuracy": 0.0, "sequence_accuracy": 0.0}}


def test_cell_state_flips_with_every_one_bit():
    bits = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 1], np.uint8)
    hidden, cells = FLIP_FLOP.states(one_hot_pairs(bits[None]))
    assert hidden.shape == cells.shape == (1, 10, 1)
    hidden, cells = hidden[0], cells[0]
    odd = running_parity(bits) == 1
    assert np.all(cells[odd, 0] > 0.9) and np.all(cells[~odd, 0] < 0.1)


def test_padding_does_not_count_in_metrics():
    parity = np.array([[0, 0, 1, 1], [0, 1, 0, 0]], dtype=np.uint8)
    real = np.array([[False, False, True, True], [True, True, True, True]])
    wrong_on_padding = one_hot_pairs(np.where(real, parity, 1 - parity))
    metrics, by_position = score(wrong_on_padding, parity, real)
    assert metrics["step_accuracy"] == metrics["sequence_accuracy"] == metrics["final_step_accuracy"] == 1.0
    np.testing.assert_array_equal(by_position, [1.0, 1.0, 1.0, 1.0])
    metrics, _ = score(wrong_on_padding, parity)  # the same outputs, padding counted as real
    assert metrics["step_accuracy"] == 0.75 and metrics["sequence_accuracy"] == 0.5


@pytest.mark.parametrize("units", [1, 3])
def test_numpy_inference_equals_keras_on_tensorflow(tmp_path, units):
    keras.utils.set_random_seed(units)
    model = reference_model(units=units)
    noise = np.random.default_rng(units)
    model.set_weights(
        [(weight + noise.normal(0, 1, weight.shape)).astype(np.float32) for weight in model.get_weights()]
    )
    save_model(model, tmp_path / "model.keras")
    loaded = load_trained_model(tmp_path / "model.keras")
    for ours, theirs in zip(loaded.weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)

    bits = np.random.default_rng(0).integers(0, 2, (500, 300), dtype=np.uint8)
    bits[:100, :150] = 2  # padding in front, as data.min_len makes it
    inputs, parity = one_hot_pairs(bits), running_parity(bits)
    ours, theirs = loaded(inputs), keras.ops.convert_to_numpy(model(inputs))
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    ours, theirs = score(ours, parity, bits != 2)[0], score(theirs, parity, bits != 2)[0]
    assert ours == pytest.approx(theirs, abs=1e-6)

    hidden, cells = loaded.states(inputs[:1])
    cell, state = model.layers[0].cell, [np.zeros((1, units), np.float32)] * 2
    for step in range(inputs.shape[1]):  # Keras' own LSTM cell, stepped by hand
        _, state = cell(inputs[:1, step], state)
        np.testing.assert_allclose(hidden[0, step], keras.ops.convert_to_numpy(state[0])[0], atol=1e-6)
        np.testing.assert_allclose(cells[0, step], keras.ops.convert_to_numpy(state[1])[0], atol=1e-6)


def test_a_model_of_another_architecture_is_refused(tmp_path):
    other = keras.Sequential(
        [keras.Input((None, 2)), keras.layers.GRU(1, return_sequences=True), keras.layers.Dense(2)]
    )
    save_model(other, tmp_path / "model.keras")
    with pytest.raises(SystemExit, match="is not the reference architecture"):
        load_trained_model(tmp_path / "model.keras")
