import keras
import numpy as np
import pytest

from stages import train as train_stage
from stages.common import (
    DataParams,
    TrainParams,
    load_bits,
    load_parity,
    load_weights,
    one_hot_pairs,
    running_parity,
)
from stages.evaluate import score
from stages.targets import supervised_steps
from stages.train import build_model, shuffled_batches, train
from tests.arrays import generated

# Short sequences and a larger learning rate: a configuration that learns within seconds for this seed.
EASY_DATA = DataParams(seq_len=10, min_len=None, count=4000, test_count=1000, seed=1)
EASY_TRAIN = TrainParams(
    units=2, epochs=8, batch_size=32, learning_rate=0.01, forget_bias=1.0, seed=0, stop_at_accuracy=None
)


def every_step(bits: np.ndarray) -> np.ndarray:
    return supervised_steps(bits, "running")


def test_model_has_the_reference_layers():
    model = build_model(units=3, learning_rate=0.001)
    lstm, dense = model.layers
    assert isinstance(lstm, keras.layers.LSTM) and lstm.units == 3 and lstm.return_sequences
    assert isinstance(dense, keras.layers.Dense) and dense.units == 2
    assert dense.activation is keras.activations.softmax
    assert model.loss == "binary_crossentropy"
    assert float(model.optimizer.learning_rate) == np.float32(0.001)
    # Keras' default LSTM initialisation: forget-gate bias 1, the other biases 0 (gates ordered i, f, c, o).
    np.testing.assert_array_equal(lstm.cell.bias.numpy(), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    # The time axis is open: a model trained at one length runs at any other.
    for seq_len in (1, 7, 123):
        assert model.predict(one_hot_pairs(np.zeros((2, seq_len), np.uint8)), verbose=0).shape == (2, seq_len, 2)


def test_short_training_learns_parity_on_held_out_data():
    train_bits, test_bits = generated(EASY_DATA)
    model = train(train_bits, running_parity(train_bits), every_step(train_bits), EASY_TRAIN)
    probabilities = model.predict(one_hot_pairs(test_bits), verbose=0)
    metrics, _ = score(probabilities, running_parity(test_bits))
    assert metrics["final_step_accuracy"] > 0.95, metrics


def test_same_seed_gives_the_same_weights():
    train_bits, _ = generated(EASY_DATA)
    parity = running_parity(train_bits)
    params = EASY_TRAIN.model_copy(update={"epochs": 1})
    first, second = (train(train_bits, parity, every_step(train_bits), params).get_weights() for _ in range(2))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_stop_at_accuracy_ends_training_at_the_first_epoch_that_reaches_it():
    train_bits, _ = generated(EASY_DATA)
    params = EASY_TRAIN.model_copy(update={"stop_at_accuracy": 0.9})
    accuracy = train(train_bits, running_parity(train_bits), every_step(train_bits), params).history.history["accuracy"]
    assert len(accuracy) < EASY_TRAIN.epochs
    assert accuracy[-1] >= 0.9 and max(accuracy[:-1]) < 0.9


@pytest.mark.parametrize("mode", ["running", "final"])
def test_labels_the_loss_does_not_supervise_never_reach_the_weights(mode):
    bits, _ = generated(EASY_DATA.model_copy(update={"min_len": 4}))  # padded in front
    parity = running_parity(bits)
    supervised = supervised_steps(bits, mode)
    params = EASY_TRAIN.model_copy(update={"epochs": 1})
    reference = train(bits, parity, supervised, params).get_weights()
    unsupervised_flipped = np.where(supervised == 1, parity, 1 - parity)
    for a, b in zip(reference, train(bits, unsupervised_flipped, supervised, params).get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # The comparison can fail: flipping the labels the loss does read changes the weights.
    all_flipped = 1 - parity
    changed = train(bits, all_flipped, supervised, params).get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(reference, changed, strict=True))


def test_forget_bias_sets_only_the_forget_gate_bias():
    lstm = build_model(units=2, learning_rate=0.001, forget_bias=3.0).layers[0]
    np.testing.assert_array_equal(lstm.cell.bias.numpy(), [0, 0, 3, 3, 0, 0, 0, 0])


@pytest.mark.parametrize("window_steps", [1 << 24, 24])  # one window; windows of 8 rows (2 batches)
def test_batches_hold_every_row_once_an_epoch_in_a_new_order(monkeypatch, window_steps):
    monkeypatch.setattr(train_stage, "WINDOW_STEPS", window_steps)
    bits = np.random.default_rng(0).integers(0, 2, size=(10, 3), dtype=np.uint8)
    weights = np.arange(30, dtype=np.float32).reshape(10, 3)  # row r starts with 3r: tells the rows apart
    dataset = shuffled_batches(bits, running_parity(bits), weights, batch_size=4, seed=0)
    epochs = [list(dataset), list(dataset)]
    for batches in epochs:
        assert sorted(len(inputs) for inputs, _, _ in batches) == [2, 4, 4]
        inputs, targets, batch_weights = (np.concatenate(part) for part in zip(*batches, strict=True))
        rows = batch_weights[:, 0].astype(int) // 3
        assert sorted(rows) == list(range(10))
        np.testing.assert_array_equal(inputs, one_hot_pairs(bits[rows]))
        np.testing.assert_array_equal(targets, one_hot_pairs(running_parity(bits)[rows]))
        if window_steps == 24:  # every batch from one window of consecutive rows: reads stay local
            assert all(len({int(w) // 24 for w in batch[:, 0]}) == 1 for _, _, batch in batches)
    assert not np.array_equal(*(np.concatenate([w for _, _, w in batches]) for batches in epochs))


def test_training_streamed_from_files_gives_the_weights_of_training_from_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(train_stage, "WINDOW_STEPS", 20 * 32 * EASY_DATA.seq_len)  # 7 windows of 640 rows
    bits, _ = generated(EASY_DATA)
    parity, supervised = running_parity(bits), every_step(bits)
    for name, array in (("bits", bits), ("parity", parity), ("weights", supervised)):
        np.save(tmp_path / f"train_{name}.npy", array)
    mapped = load_bits(tmp_path / "train_bits.npy")
    mapped_parity = load_parity(tmp_path / "train_parity.npy", mapped)
    mapped_weights = load_weights(tmp_path / "train_weights.npy", mapped)
    assert all(isinstance(array, np.memmap) for array in (mapped, mapped_parity, mapped_weights))
    params = EASY_TRAIN.model_copy(update={"epochs": 1})
    from_files = train(mapped, mapped_parity, mapped_weights, params).get_weights()
    for a, b in zip(train(bits, parity, supervised, params).get_weights(), from_files, strict=True):
        np.testing.assert_array_equal(a, b)
