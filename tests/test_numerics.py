"""The fused numerics against Keras, their oracle: forward states, gradients, Adam, whole training runs of the two
engines; and their determinism across threads and instruction sets."""

import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from devkit.floor import floor_train_batches
from devkit.scratch_repo import REPO
from parity_lstm.data.encoding import one_hot_pairs, running_parity
from parity_lstm.engines.keras.oracle import keras_model, reference_model
from parity_lstm.model import Layout, initial_members
from parity_lstm.numerics import stepwise
from parity_lstm.numerics.backprop import Adam, gradients, train_batches
from parity_lstm.numerics.forward import LANES, probability_of_one, states
from parity_lstm.scoring import score
from parity_lstm.trained import TrainedModel
from parity_lstm.training import Validation, train
from tests.arrays import generated, padded_batch
from tests.digest_training import MEMBERS, ROWS
from tests.easy_fit import EASY_DATA, EASY_TRAIN, every_step
from tools.predict import predict_line

CELLS = ("lstm", "gru", "simple_rnn")


def random_members(members: int, layout: Layout, seed: int) -> list[keras.Model]:
    """Keras models with initial weights plus noise, so that every weight matters."""
    noise, models = np.random.default_rng(seed), []
    for k in range(members):
        weights = reference_model(layout, seed + k).get_weights()
        models.append(keras_model([(w + noise.normal(0, 0.5, w.shape)).astype(np.float32) for w in weights], layout))
    return models


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("units", [1, 3])
def test_forward_states_and_outputs_equal_keras(cell, units):
    layout = Layout(units, cell)
    (model,) = random_members(1, layout, seed=units)
    bits = padded_batch(200, 120, seed=units)[0]
    inputs = one_hot_pairs(bits)
    weights = layout.flatten(model.get_weights())
    hidden, cells = states(weights, bits, layout)
    recurrent = model.layers[0]
    keras_hidden = keras.ops.convert_to_numpy(recurrent(inputs))
    # A simple RNN's state carries every rounding on ungated, through noisy weights that may stretch it, and Keras'
    # matrix products sum in an order its CPU picks: some steps of 120 reach 3.1e-6 on one AMD EPYC (the median step:
    # 3e-7, as the other cells'). A wrong weight or gate is off by far more.
    np.testing.assert_allclose(hidden, keras_hidden, atol=1e-5 if cell == "simple_rnn" else 1e-6)
    if cell == "lstm":  # every step's cell state: Keras' own cell, stepped by hand, on row 0
        state = [np.zeros((1, units), np.float32)] * 2
        for step in range(bits.shape[1]):
            _, state = recurrent.cell(inputs[:1, step], state)
            np.testing.assert_allclose(cells[0, step], keras.ops.convert_to_numpy(state[1])[0], atol=1e-6)
    else:
        np.testing.assert_array_equal(cells, hidden)  # one state: the hidden one
    probability = TrainedModel(weights, layout).probability_of_one(bits).T
    np.testing.assert_allclose(probability, keras.ops.convert_to_numpy(model(inputs))[..., 0], atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("members, units", [(1, 1), (4, 1), (2, 3)])
def test_gradients_and_loss_equal_keras_autodiff_of_the_model(cell, members, units):
    """Each member's gradient is Keras' gradient of its model's compiled loss (binary cross-entropy of the softmax,
    the loss factors as sample weights, Keras' reduction), padding and uneven factors included."""
    layout = Layout(units, cell)
    models = random_members(members, layout, seed=10 * members + units)
    bits, parity, factors = padded_batch(9, 13, seed=members)
    rows = np.stack([layout.flatten(model.get_weights()) for model in models])
    gradient, loss = gradients(rows, bits, parity, factors, layout)
    x, y = one_hot_pairs(bits), one_hot_pairs(parity)
    for k, model in enumerate(models):
        model.compile(loss="binary_crossentropy")
        with tf.GradientTape() as tape:
            keras_loss = model.compute_loss(x=x, y=y, y_pred=model(x), sample_weight=factors)
        keras_gradient = layout.flatten([g.numpy() for g in tape.gradient(keras_loss, model.trainable_weights)])
        assert np.abs(keras_gradient).max() > 1e-2  # gradients large enough to compare
        np.testing.assert_allclose(gradient[k], keras_gradient, rtol=0, atol=1e-7)
        assert loss[k] == pytest.approx(float(keras_loss), abs=1e-6)


def test_adam_steps_equal_keras_adam():
    """Within a few float32 ulps of the weights (1e-6 here), a ten-thousandth of a step of 0.01."""
    rng = np.random.default_rng(0)
    members = rng.normal(0, 1, (3, 20)).astype(np.float32)
    start, variable = members.copy(), keras.Variable(members.copy())
    ours, theirs = Adam(members, 0.01), keras.optimizers.Adam(0.01)
    for _ in range(5):
        gradient = rng.normal(0, 0.1, members.shape).astype(np.float32)
        ours.apply(gradient)
        theirs.apply([gradient], [variable])
    np.testing.assert_allclose(members, keras.ops.convert_to_numpy(variable), rtol=0, atol=1e-6)
    assert np.abs(members - start).max() > 0.01  # both stepped: the comparison can fail


@pytest.mark.parametrize("cell, units", [("lstm", 1), ("lstm", 3), ("gru", 2), ("simple_rnn", 2)])
def test_a_short_run_ends_with_the_keras_engines_weights(cell, units):
    """Same initial weights, same batches, the same validation: after 3 epochs (93 Adam steps) of a population of 2,
    every weight within 2e-4 of the Keras engine's (float32 sums in another order, compounded step after step)."""
    data = EASY_DATA.model_copy(update={"count": 992, "min_len": 5})
    params = EASY_TRAIN.model_copy(update={"population": 2, "epochs": 3, "units": units, "cell": cell})
    bits, val_bits, _ = generated(data)
    arrays = bits, running_parity(bits), every_step(bits), val_bits, running_parity(val_bits)
    ours = train(*arrays, params)
    theirs = train(*arrays, params.model_copy(update={"engine": "keras"}))
    initial = initial_members(params.seed, params.population, Layout(units, cell), params.forget_bias)
    assert np.abs(ours.members - initial).max() > 0.05  # both trained: the comparison can fail
    np.testing.assert_allclose(ours.members, theirs.members, rtol=0, atol=2e-4)
    np.testing.assert_allclose(ours.val_accuracy, theirs.val_accuracy, atol=2 / len(val_bits))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("units", [1, 3])
def test_the_stepwise_forward_pass_gives_the_kernels_bits(cell, units):
    """What a few short sequences run on, with no numba: the kernels' arithmetic, bit for bit, padding included."""
    layout = Layout(units, cell)
    (model,) = random_members(1, layout, seed=units)
    weights = layout.flatten(model.get_weights())
    bits = padded_batch(6, 40, seed=units)[0]
    kernels = probability_of_one(weights[None], bits, layout)[:, :, 0]
    np.testing.assert_array_equal(stepwise.probability_of_one(weights, bits, layout), kernels)


def test_at_exactly_one_half_the_prediction_is_even_everywhere(tmp_path):
    """One rule for p = 0.5: even. A model whose two logits are always equal predicts parity 0 with confidence 0.5."""
    weights = reference_model(Layout(1)).get_weights()
    weights[3][:] = 0  # Dense kernel: both logits ignore the state
    weights[4][:] = [0.25, 0.25]
    model = TrainedModel(Layout(1).flatten(weights), Layout(1))
    bits = np.array([[0, 1, 1], [1, 0, 0]], np.uint8)  # final parity even, odd
    probability = model.probability_of_one(bits).T
    assert np.all(probability == 0.5)
    metrics, _ = score(probability, running_parity(bits))
    assert metrics["final_step_accuracy"] == 0.5 and metrics["mean_final_confidence"] == 0.5
    accuracy = Validation(bits, running_parity(bits), Layout(1)).accuracy(model.weights[None])
    assert accuracy.tolist() == [0.5]
    assert predict_line(model, bits[1]) == "100\t0\t0.5000\t1"


@pytest.mark.parametrize("cell, units", [("lstm", 1), ("gru", 2), ("simple_rnn", 3)])
def test_batches_in_one_kernel_call_give_the_bits_of_a_call_a_batch(cell, units):
    """What the fused engine trains with: Adam's steps on batches run in one call, the last one smaller."""
    layout = Layout(units, cell)
    arrays = padded_batch(90, 30, seed=units)
    order = np.random.default_rng(units).permutation(90)
    batches = [np.sort(order[first : first + 32]) for first in range(0, 90, 32)]
    one_call, a_call_a_batch = (Adam(initial_members(units, 3, layout), 0.01) for _ in range(2))
    losses = train_batches(one_call, arrays, batches, layout)
    for batch, loss in zip(batches, losses, strict=True):
        gradient, expected = gradients(a_call_a_batch.members, *(array[batch] for array in arrays), layout)
        a_call_a_batch.apply(gradient)
        np.testing.assert_array_equal(loss, expected)
    for state in ("members", "m", "v"):
        np.testing.assert_array_equal(getattr(one_call, state), getattr(a_call_a_batch, state))


def test_the_same_rules_floor_gives_the_engine_s_bits():
    """devkit/floor.py, the benchmark's floor under the engine's rules, is only a floor if it computes what the engine
    does: the same losses, weights and moments, bit for bit, padding and loss factors included."""
    layout = Layout(1)
    arrays = padded_batch(90, 30, seed=5)
    batches = [np.arange(first, min(first + 32, 90)) for first in range(0, 90, 32)]
    engine, floor = (Adam(initial_members(5, 3, layout), 0.01) for _ in range(2))
    np.testing.assert_array_equal(
        train_batches(engine, arrays, batches, layout), floor_train_batches(floor, arrays, batches)
    )
    for state in ("members", "m", "v"):
        np.testing.assert_array_equal(getattr(engine, state), getattr(floor, state))


def digest_in_process(**environment: str) -> str:
    """tests.digest_training's digest, in a process of its own with this environment."""
    environment = os.environ | {"PYTHONPATH": str(REPO)} | environment
    command = [sys.executable, "-m", "tests.digest_training"]
    done = subprocess.run(command, env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


def test_the_same_bytes_with_one_thread_or_two():
    """Whatever the machine's cores: a process's threads are NUMBA_NUM_THREADS, however many CPUs it has."""
    assert MEMBERS * ROWS >= 2 * LANES  # chunks enough for two threads to share
    assert digest_in_process(NUMBA_NUM_THREADS="1") == digest_in_process(NUMBA_NUM_THREADS="2")


def host_runs(cpu: str) -> str | None:
    """Why this CPU cannot run code compiled for the numba target `cpu`; None if it can."""
    flags = set(re.search(r"^flags\s*:(.*)$", Path("/proc/cpuinfo").read_text(), re.M)[1].split())
    needs = {"haswell": {"avx2", "fma"}, "skylake-avx512": {"avx512f", "avx512bw", "avx512dq", "avx512vl"}}
    missing = needs.get(cpu, set()) - flags
    return f"this CPU lacks {', '.join(sorted(missing))}, which code for {cpu} uses" if missing else None


@pytest.mark.slow  # compiles the kernels for another CPU, cold
@pytest.mark.parametrize("cpu", ["generic", "haswell", "skylake-avx512"])
def test_the_same_bytes_whatever_instruction_set_the_kernels_are_compiled_for(tmp_path, cpu):
    """x86-64 without SIMD extensions, AVX2 and AVX-512, against this CPU's own ("host"), on 2 threads."""
    if reason := host_runs(cpu):
        pytest.skip(reason)

    # A numba cache of its own: code compiled for another CPU stays out of the project's.
    elsewhere = digest_in_process(NUMBA_NUM_THREADS="2", NUMBA_CPU_NAME=cpu, NUMBA_CACHE_DIR=str(tmp_path))
    assert elsewhere == digest_in_process(NUMBA_NUM_THREADS="2")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_forward_pass_of_a_population_is_each_members_alone(cell):
    """Lanes of several members and rows, over chunks of lanes that do not divide evenly."""
    layout = Layout(2, cell)
    members = initial_members(0, 3, layout)
    bits = np.random.default_rng(0).integers(0, 2, (70, 9), dtype=np.uint8)
    together = probability_of_one(members, bits, layout)
    final = probability_of_one(members, bits, layout, final_only=True)
    for k in range(3):
        alone = probability_of_one(members[k : k + 1], bits, layout)[:, :, 0]
        np.testing.assert_array_equal(together[:, :, k], alone)
        np.testing.assert_array_equal(final[0, :, k], alone[-1])
