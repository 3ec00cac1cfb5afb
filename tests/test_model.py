"""The model, defined once (parity_lstm.model): its layers as Keras builds them, the flat layout, the initial weights
(Keras' distributions, the same bytes on every CPU), and the model file that Keras opens."""

import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from devkit.scratch_repo import REPO
from parity_lstm.data.encoding import PAD, one_hot_pairs
from parity_lstm.engines.keras.oracle import keras_model
from parity_lstm.model import (
    CELLS,
    Layout,
    cell_of,
    initial_members,
    initial_weights,
    keras_config,
    load_model,
    save_model,
)
from parity_lstm.trained import TrainedModel
from tests.digest_initial_weights import digest

# tests.digest_initial_weights as written at the commit that made the weights numpy's: a change to how they are
# drawn changes every committed run (dvc.lock), so it must be meant.
INITIAL_WEIGHTS_DIGEST = "22dd24a3badd57beda41ab37b48e92806cac65a5f73064aa77a429c872112b10"
# Written by Keras (`model.save`) through the code at commit cc7933d, weights with noise, 2 units.
KERAS_WRITTEN = Path(__file__).parent / "fixtures/model_written_by_keras_at_cc7933d.keras"


def noisy_weights(layout: Layout, seed: int) -> list[np.ndarray]:
    """Initial weights plus noise, so that every weight matters."""
    noise = np.random.default_rng(seed)
    return [(w + noise.normal(0, 0.5, w.shape)).astype(np.float32) for w in initial_weights(seed, layout)]


def padded_bits(rows: int, steps: int) -> np.ndarray:
    bits = np.random.default_rng(0).integers(0, 2, (rows, steps), dtype=np.uint8)
    bits[: rows // 3, : steps // 2] = PAD  # padding in front, as data.min_len makes it
    return bits


@pytest.mark.parametrize("cell", CELLS)
def test_keras_builds_the_model_from_the_config_a_model_file_carries(cell):
    layout = Layout(3, cell)
    model = keras_model(initial_weights(0, layout), layout)
    recurrent, dense = model.layers
    assert type(recurrent).__name__ == CELLS[cell].keras_layer and recurrent.units == 3 and recurrent.return_sequences
    assert getattr(recurrent, "reset_after", True)  # a GRU's as Keras' default: reset after the recurrent product
    assert isinstance(dense, keras.layers.Dense) and dense.units == 2
    assert dense.activation is keras.activations.softmax
    # The time axis is open: a model trained at one length runs at any other.
    for seq_len in (1, 7, 123):
        assert model.predict(one_hot_pairs(np.zeros((2, seq_len), np.uint8)), verbose=0).shape == (2, seq_len, 2)


def test_the_layout_derives_every_offset_from_the_shapes():
    layout = Layout(3)
    assert layout.shapes == ((2, 12), (3, 12), (12,), (3, 2), (2,))
    assert layout.offsets == (0, 24, 60, 72, 78, 80) and layout.size == 4 * 9 + 14 * 3 + 2
    assert np.diff(layout.offsets).tolist() == [math.prod(shape) for shape in layout.shapes]
    weights = noisy_weights(layout, seed=1)
    row = layout.flatten(weights)
    assert row.dtype == np.float32 and row[24:36].tolist() == weights[1][0].tolist()
    assert all(np.array_equal(a, b) for a, b in zip(layout.unflatten(row), weights, strict=True))
    with pytest.raises(ValueError, match=r"a weight of shape \(2, 8\) where the model has \(2, 12\)"):
        layout.flatten(noisy_weights(Layout(2), seed=1)[:1] + weights[1:])
    assert Layout(3, "gru").shapes[2] == (2, 9) and Layout(3, "simple_rnn").size == 6 + 9 + 3 + 6 + 2
    for cell in CELLS:
        assert np.diff(Layout(2, cell).offsets).tolist() == [math.prod(shape) for shape in Layout(2, cell).shapes]


@pytest.mark.parametrize("cell", CELLS)
def test_forget_bias_sets_an_lstms_forget_gate_and_no_other_bias(cell):
    kernel, recurrent, bias, dense_kernel, dense_bias = initial_weights(4, Layout(2, cell), forget_bias=3.0)
    expected = [0, 0, 3, 3, 0, 0, 0, 0] if cell == "lstm" else np.zeros(Layout(2, cell).shapes[2])  # i, f, c, o
    np.testing.assert_array_equal(bias, expected)
    np.testing.assert_array_equal(dense_bias, [0, 0])
    # Orthogonal rows, as Keras' Orthogonal initializer gives a (units, gates x units) kernel.
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(2), atol=1e-6)
    assert kernel.dtype == recurrent.dtype == dense_kernel.dtype == np.float32


@pytest.mark.parametrize(
    "environment",
    [{}, {"OPENBLAS_CORETYPE": "Haswell"}, {"OPENBLAS_CORETYPE": "SkylakeX"}, {"OPENBLAS_CORETYPE": "Prescott"},
     {"NUMBA_CPU_NAME": "generic"}],
    ids=["this CPU", "OpenBLAS Haswell", "OpenBLAS SkylakeX", "OpenBLAS Prescott", "numba generic"],
)  # fmt: skip
def test_initial_weights_are_the_same_bytes_whatever_kernels_the_cpu_gets(environment):
    """OpenBLAS picks its kernels by CPU (a QR through LAPACK differs in its last bits between them, on this kind of
    machine); OPENBLAS_CORETYPE forces one, as another CPU would get it."""
    env = os.environ | {"PYTHONPATH": str(REPO)} | environment
    done = subprocess.run(
        [sys.executable, "-m", "tests.digest_initial_weights"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == INITIAL_WEIGHTS_DIGEST


def test_the_stored_digest_is_this_process_s():
    assert digest() == INITIAL_WEIGHTS_DIGEST


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical distributions."""
    a, b = np.sort(a.ravel()), np.sort(b.ravel())
    points = np.concatenate([a, b])
    return float(
        np.abs(np.searchsorted(a, points, "right") / len(a) - np.searchsorted(b, points, "right") / len(b)).max()
    )


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("units, seeds", [(1, 1000), (3, 300)])
def test_initial_weights_follow_keras_default_initializers(cell, units, seeds):
    """Pooled over many seeds, each weight's values against Keras' own initializers' (the Kolmogorov-Smirnov
    statistic below its 0.1 % critical value, 1.95 sqrt((n + m) / nm)); the moments against their exact values."""
    layout = Layout(units, cell)
    ours = [initial_weights(seed, layout) for seed in range(seeds)]
    initializers = {
        0: keras.initializers.GlorotUniform,
        1: keras.initializers.Orthogonal,
        3: keras.initializers.GlorotUniform,
    }
    for index, initializer in initializers.items():
        shape = layout.shapes[index]
        mine = np.stack([weights[index] for weights in ours])
        theirs = np.stack([keras.ops.convert_to_numpy(initializer(seed=seed)(shape)) for seed in range(seeds)])
        n = mine.size
        assert ks_statistic(mine, theirs) < 1.95 * np.sqrt(2 / n), (index, shape)
        # Glorot uniform: variance limit^2 / 3 = 2 / (fan in + fan out); orthogonal (u, gu) rows: 1 / gu.
        variance = 2 / sum(shape) if index != 1 else 1 / shape[1]
        assert abs(mine.mean()) < 4 * np.sqrt(variance / n)
        assert mine.var() == pytest.approx(variance, rel=0.1)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("units", [1, 3])
def test_a_model_file_opens_in_keras_with_its_weights_and_the_forward_outputs(tmp_path, cell, units):
    layout = Layout(units, cell)
    weights = noisy_weights(layout, seed=units)
    save_model(weights, layout, tmp_path / "model.keras")
    opened = keras.saving.load_model(tmp_path / "model.keras")
    assert all(np.array_equal(a, b) for a, b in zip(opened.get_weights(), weights, strict=True))
    bits = padded_bits(300, 120)
    ours = TrainedModel(layout.flatten(weights), layout).probability_of_one(bits).T
    theirs = opened.predict(one_hot_pairs(bits), verbose=0)[..., 0]
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-6 if cell == "simple_rnn" else 1e-6)  # test_numerics
    loaded, loaded_layout = load_model(tmp_path / "model.keras")
    assert loaded_layout == layout and all(np.array_equal(a, b) for a, b in zip(loaded, weights, strict=True))


def test_a_model_file_is_the_same_bytes_for_the_same_weights(tmp_path):
    layout = Layout(2)
    save_model(noisy_weights(layout, seed=3), layout, tmp_path / "first.keras")
    save_model(noisy_weights(layout, seed=3), layout, tmp_path / "second.keras")
    assert (tmp_path / "first.keras").read_bytes() == (tmp_path / "second.keras").read_bytes()
    save_model(noisy_weights(layout, seed=4), layout, tmp_path / "other.keras")
    assert (tmp_path / "first.keras").read_bytes() != (tmp_path / "other.keras").read_bytes()


def test_a_file_keras_wrote_through_the_earlier_code_still_loads(tmp_path):
    weights, layout = load_model(KERAS_WRITTEN)
    assert layout == Layout(2, "lstm")
    opened = keras.saving.load_model(KERAS_WRITTEN)
    assert all(np.array_equal(a, b) for a, b in zip(opened.get_weights(), weights, strict=True))
    save_model(weights, layout, tmp_path / "model.keras")  # written anew: the same weights, read back
    assert all(np.array_equal(a, b) for a, b in zip(load_model(tmp_path / "model.keras")[0], weights, strict=True))


def test_a_model_of_another_architecture_is_refused(tmp_path):
    other = keras.Sequential(
        [keras.Input((None, 2)), keras.layers.GRU(1, return_sequences=True), keras.layers.Dense(2)]
    )
    other.save(tmp_path / "model.keras")
    with pytest.raises(SystemExit, match="is not the model, an LSTM, GRU or simple RNN"):
        load_model(tmp_path / "model.keras")


@pytest.mark.parametrize("first", ["Masking", "Dense"])
def test_layers_that_do_not_start_with_the_input_are_not_this_model(first):
    layers = keras_config(Layout(1))["config"]["layers"]
    assert cell_of(layers) == "lstm"
    assert cell_of([{**layers[0], "class_name": first}, *layers[1:]]) is None


def test_the_initial_weights_follow_the_cell_whatever_string_names_it():
    """A cell's name read from a file is a string of its own, not the literal's object."""
    built = "".join(["ls", "tm"])
    assert all(
        np.array_equal(a, b)
        for a, b in zip(initial_weights(0, Layout(1, built)), initial_weights(0, Layout(1, "lstm")), strict=True)
    )


def test_a_model_file_without_the_parts_a_keras_file_has_is_refused_in_one_line(tmp_path):
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(SystemExit, match=r"cannot be loaded \(KeyError: "):
        load_model(path)


def test_a_population_starts_member_k_from_seed_plus_k_with_keras_forget_bias():
    layout = Layout(1)
    members = initial_members(5, 2, layout)
    for k in range(2):
        weights = initial_weights(5 + k, layout)
        np.testing.assert_array_equal(members[k], layout.flatten(weights))
        assert weights[2][1] == 1  # the forget gate's bias: Keras' unit_forget_bias
