import numpy as np
import pytest

from stages.common import PAD, DataParams
from stages.generate import generate, summary

PARAMS = DataParams(seq_len=20, min_len=None, count=500, test_count=300, seed=7)


def test_shapes_and_dtype():
    train, test = generate(PARAMS)
    assert train.shape == (500, 20) and test.shape == (300, 20)
    assert train.dtype == test.dtype == np.uint8
    assert set(np.unique(train)) == set(np.unique(test)) == {0, 1}


def test_same_seed_same_bits_other_seed_other_bits():
    train_a, test_a = generate(PARAMS)
    train_b, test_b = generate(PARAMS)
    assert train_a.tobytes() == train_b.tobytes() and test_a.tobytes() == test_b.tobytes()
    train_c, _ = generate(PARAMS.model_copy(update={"seed": 8}))
    assert not np.array_equal(train_a, train_c)


def test_held_out_set_is_not_a_copy_of_training_data():
    train, test = generate(PARAMS.model_copy(update={"test_count": PARAMS.count}))
    assert not np.array_equal(train, test)
    # 20 random bits give ~1e6 sequences: almost no held-out sequence should also be a training one.
    train_rows = {row.tobytes() for row in train}
    assert sum(row.tobytes() in train_rows for row in test) < 5


def test_bits_are_fair_coin_flips():
    train, _ = generate(DataParams(seq_len=50, min_len=None, count=20_000, test_count=1, seed=0))
    assert summary(train)["share_of_ones"] == pytest.approx(0.5, abs=0.01)
    assert summary(train)["share_odd_parity"] == pytest.approx(0.5, abs=0.02)


def test_variable_lengths_are_padded_in_front():
    params = DataParams(seq_len=12, min_len=3, count=2000, test_count=10, seed=0)
    bits, _ = generate(params)
    real = bits != PAD
    lengths = real.sum(axis=1)
    assert lengths.min() == 3 and lengths.max() == 12
    # Real steps are a suffix: once a sequence starts, it has no padding.
    np.testing.assert_array_equal(real, np.arange(12) >= 12 - lengths[:, None])
    assert set(np.unique(bits[real])) == {0, 1}
    # The same data at fixed length: the bits are the same draws, only the padding differs.
    fixed, _ = generate(params.model_copy(update={"min_len": None}))
    np.testing.assert_array_equal(bits[real], fixed[real])


def test_min_len_above_seq_len_is_refused():
    with pytest.raises(ValueError, match="min_len"):
        DataParams(seq_len=5, min_len=6, count=1, test_count=1, seed=0)
