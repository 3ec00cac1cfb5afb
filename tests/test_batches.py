"""Training batches: every row once an epoch, in a new order, the same for both engines, from files as from memory."""

import numpy as np
import pytest

from parity_lstm.data import batches as batches_module
from parity_lstm.data.batches import epoch_windows
from parity_lstm.data.encoding import one_hot_pairs, running_parity
from parity_lstm.data.files import load_bits, load_loss_factors, load_parity
from parity_lstm.engines.keras.batches import shuffled_batches
from parity_lstm.training import train
from tests.arrays import generated
from tests.easy_fit import EASY_DATA, EASY_TRAIN, every_step


@pytest.mark.parametrize("window_steps", [1 << 24, 24])  # one window; windows of 8 rows (2 batches)
def test_batches_hold_every_row_once_an_epoch_in_a_new_order(monkeypatch, window_steps):
    monkeypatch.setattr(batches_module, "WINDOW_STEPS", window_steps)
    bits = np.random.default_rng(0).integers(0, 3, size=(10, 3), dtype=np.uint8)  # 0, 1 and PAD (2)
    factors = np.arange(30, dtype=np.float32).reshape(10, 3)  # row r starts with 3r: tells the rows apart
    dataset = shuffled_batches(bits, running_parity(bits), factors, batch_size=4, seed=0)
    epochs = [list(dataset), list(dataset)]
    for batches in epochs:
        assert sorted(len(inputs) for inputs, _, _ in batches) == [2, 4, 4]
        inputs, targets, batch_factors = (np.concatenate(part) for part in zip(*batches, strict=True))
        rows = batch_factors[:, 0].astype(int) // 3
        assert sorted(rows) == list(range(10))
        assert inputs.dtype == targets.dtype == np.float32
        np.testing.assert_array_equal(inputs, one_hot_pairs(bits[rows]))
        np.testing.assert_array_equal(targets, one_hot_pairs(running_parity(bits)[rows]))
        if window_steps == 24:  # every batch from one window of consecutive rows: reads stay local
            assert all(len({int(w) // 24 for w in batch[:, 0]}) == 1 for _, _, batch in batches)
    assert not np.array_equal(*(np.concatenate([w for _, _, w in batches]) for batches in epochs))
    # The fused engine's batches: the same rows in the same order, epoch after epoch, from the same seed.
    rng = np.random.default_rng(0)
    for batches in epochs:
        windows = epoch_windows(bits, running_parity(bits), factors, 4, rng)
        fused = [tuple(array[batch] for array in arrays) for arrays, rows in windows for batch in rows]
        assert len(fused) == len(batches)
        for (inputs, targets, batch_factors), (fused_bits, fused_parity, fused_factors) in zip(
            batches, fused, strict=True
        ):
            np.testing.assert_array_equal(inputs, one_hot_pairs(fused_bits))
            np.testing.assert_array_equal(targets, one_hot_pairs(fused_parity))
            np.testing.assert_array_equal(batch_factors, fused_factors)


def test_training_is_deterministic_and_streamed_from_files_gives_the_weights_of_training_from_memory(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(batches_module, "WINDOW_STEPS", 20 * 32 * EASY_DATA.seq_len)  # 7 windows of 640 rows
    bits, val_bits, _ = generated(EASY_DATA)
    parity, factors = running_parity(bits), every_step(bits)
    for name, array in (("bits", bits), ("parity", parity), ("loss_factors", factors)):
        np.save(tmp_path / f"train_{name}.npy", array)
    mapped = load_bits(tmp_path / "train_bits.npy")
    mapped_parity = load_parity(tmp_path / "train_parity.npy", mapped)
    mapped_factors = load_loss_factors(tmp_path / "train_loss_factors.npy", mapped)
    assert all(isinstance(array, np.memmap) for array in (mapped, mapped_parity, mapped_factors))
    params = EASY_TRAIN.model_copy(update={"epochs": 1, "population": 2})
    validation = (val_bits, running_parity(val_bits))
    from_files = train(mapped, mapped_parity, mapped_factors, *validation, params)
    in_memory = train(bits, parity, factors, *validation, params)
    # The same params and data give the same bytes, whether the rows come from memory or from files.
    assert from_files.members.tobytes() == in_memory.members.tobytes()
