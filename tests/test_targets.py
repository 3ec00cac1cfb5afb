from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from parity_lstm.data.encoding import PAD, one_hot_pairs, random_bits, running_parity
from parity_lstm.data.files import TRAIN_LOSS_FACTORS
from parity_lstm.data.loss import inverse_position_scale, loss_factors
from parity_lstm.params import TargetsParams
from stages.targets import write_loss_factors, write_parity


def brute_force_parity(bits: np.ndarray) -> np.ndarray:
    """Count the ones in every prefix, one at a time."""
    return np.array([[int(sum(row[: t + 1])) % 2 for t in range(len(row))] for row in bits], dtype=np.uint8)


@given(arrays(np.uint8, st.tuples(st.integers(1, 20), st.integers(1, 60)), elements=st.integers(0, 1)))
def test_matches_brute_force_count(bits):
    parity = running_parity(bits)
    assert parity.dtype == np.uint8 and parity.shape == bits.shape
    np.testing.assert_array_equal(parity, brute_force_parity(bits))


@pytest.mark.parametrize(
    "bits, expected",
    [
        ([[0, 0, 0, 0]], [[0, 0, 0, 0]]),
        ([[1, 1, 1, 1, 1]], [[1, 0, 1, 0, 1]]),
        ([[1], [0]], [[1], [0]]),
        ([[1, 0, 1, 1, 0]], [[1, 1, 0, 1, 1]]),
    ],
    ids=["all zeros", "all ones", "length 1", "docstring example"],
)
def test_edge_cases(bits, expected):
    np.testing.assert_array_equal(running_parity(np.array(bits, dtype=np.uint8)), expected)


def test_long_sequences_stay_uint8_and_exact():
    bits = np.ones((2, 10_001), dtype=np.uint8)
    parity = running_parity(bits)
    assert parity.dtype == np.uint8
    assert parity[0, -1] == 1 and parity[1, -2] == 0


def test_padding_counts_as_zero_bits():
    np.testing.assert_array_equal(running_parity(np.array([[PAD, PAD, 1, 0, 1]], np.uint8)), [[0, 0, 1, 1, 0]])


def test_supervised_steps():
    bits = np.array([[PAD, 1, 0, 1], [0, 1, 1, 0]], np.uint8)
    np.testing.assert_array_equal(loss_factors(bits, "running"), [[0, 1, 1, 1], [1, 1, 1, 1]])
    np.testing.assert_array_equal(loss_factors(bits, "final"), [[0, 0, 0, 1], [0, 0, 0, 1]])


def test_inverse_position_weighting_favours_early_steps_and_keeps_the_mean():
    bits = np.array([[PAD, 1, 0, 1], [0, 1, 1, 0]], np.uint8)
    scale = inverse_position_scale([bits], 4, "running")
    weights = loss_factors(bits, "running", "inverse_position", scale)
    assert weights.dtype == np.float32
    unscaled = np.array([[0, 1, 1 / 2, 1 / 3], [1, 1 / 2, 1 / 3, 1 / 4]])
    np.testing.assert_allclose(weights, unscaled * 7 / unscaled.sum(), rtol=1e-6)
    final = loss_factors(bits, "final", "inverse_position", inverse_position_scale([bits], 4, "final"))
    np.testing.assert_allclose(
        final, [[0, 0, 0, 2 * (1 / 3) / (1 / 3 + 1 / 4)], [0, 0, 0, 2 * (1 / 4) / (1 / 3 + 1 / 4)]]
    )


def test_the_weight_scale_is_the_same_however_the_rows_are_split():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, size=(1000, 30), dtype=np.uint8)
    bits[np.arange(30) < rng.integers(0, 30, size=(1000, 1))] = PAD  # lengths 1 to 30, padded in front
    whole = inverse_position_scale([bits], 30, "running")
    assert inverse_position_scale([bits[:333], bits[333:334], bits[334:]], 30, "running") == whole
    weights = loss_factors(bits, "running", "inverse_position", whole)
    assert weights[bits != PAD].mean() == pytest.approx(1, rel=1e-6)


def test_running_parity_runs_along_the_last_axis_of_any_shape():
    row = np.array([1, 1, 0, 1, PAD], dtype=np.uint8)
    np.testing.assert_array_equal(running_parity(row), [1, 0, 0, 1, 1])
    np.testing.assert_array_equal(
        running_parity(np.stack([[row, 1 - row]] * 2)), [[[1, 0, 0, 1, 1], [0, 0, 1, 1, 1]]] * 2
    )


def test_each_bit_is_paired_as_the_reference_pairs_it_and_padding_as_zeros():
    pairs = one_hot_pairs(np.array([[1, 0, PAD], [0, 1, 1]], dtype=np.uint8))
    assert pairs.dtype == np.float32
    np.testing.assert_array_equal(pairs, [[[1, 0], [0, 1], [0, 0]], [[0, 1], [1, 0], [1, 0]]])


def test_random_bits_are_fair_zeros_and_ones_of_the_shape_asked():
    bits = random_bits(np.random.default_rng(0), 1000, 50)
    assert bits.shape == (1000, 50) and bits.dtype == np.uint8
    # 50,000 fair draws: the share of ones is 0.5 within 0.01 (4.5 standard deviations).
    assert set(np.unique(bits)) == {0, 1} and abs(bits.mean() - 0.5) < 0.01


def test_the_targets_summary_counts_odd_steps_odd_finals_and_supervised_steps(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("data").mkdir()
    np.save("bits.npy", np.array([[1, 0, 1], [PAD, 1, 1], [0, 0, 1]], np.uint8))
    bits = np.load("bits.npy", mmap_mode="r")  # parity [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert write_parity(bits, tmp_path / "parity.npy") == {"share_odd_steps": 4 / 9, "share_odd_final": 1 / 3}
    assert write_loss_factors(bits, TargetsParams(mode="running", weighting="uniform")) == 8 / 3
    assert write_loss_factors(bits, TargetsParams(mode="final", weighting="uniform")) == 1
    assert write_loss_factors(bits, TargetsParams(mode="running", weighting="inverse_position")) == 8 / 3
    factors = np.load(TRAIN_LOSS_FACTORS)
    assert factors[0, 1] < factors[0, 0] and factors[factors > 0].mean() == pytest.approx(1, rel=1e-6)
