import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import keras
import numpy as np
import pytest

from stages import train as train_stage
from stages.common import (
    CONVERGED,
    DataParams,
    TrainParams,
    load_bits,
    load_parity,
    load_weights,
    one_hot_pairs,
    running_parity,
)
from stages.evaluate import score
from stages.population import population_loss
from stages.targets import supervised_steps
from stages.train import (
    STEPS_PER_EXECUTION,
    build_population,
    converged_epochs,
    initial_weights,
    member_model,
    reference_model,
    select,
    shuffled_batches,
    train,
)
from tests.arrays import generated
from tests.conftest import flip_flop_weights
from tests.scratch_repo import REPO

# Short sequences and a larger learning rate: a configuration that learns within seconds for this seed.
EASY_DATA = DataParams(seq_len=10, min_len=None, count=4000, val_count=500, test_count=1000, seed=1)
EASY_TRAIN = TrainParams(
    units=2, epochs=8, batch_size=32, learning_rate=0.01, forget_bias=1.0, seed=0, population=1, stop_at_accuracy=None
)


def every_step(bits: np.ndarray) -> np.ndarray:
    return supervised_steps(bits, "running")


def fit(params: TrainParams, data: DataParams = EASY_DATA, mode: str = "running", flip_labels=None):
    """Train on the easy data; `flip_labels(parity, supervised)` may change the training labels first."""
    bits, val_bits, _ = generated(data)
    parity, supervised = running_parity(bits), supervised_steps(bits, mode)
    if flip_labels is not None:
        parity = flip_labels(parity, supervised)
    return train(bits, parity, supervised, val_bits, running_parity(val_bits), params)


def test_the_reference_model_has_the_reference_layers():
    model = reference_model(units=3)
    lstm, dense = model.layers
    assert isinstance(lstm, keras.layers.LSTM) and lstm.units == 3 and lstm.return_sequences
    assert isinstance(dense, keras.layers.Dense) and dense.units == 2
    assert dense.activation is keras.activations.softmax
    # Keras' default LSTM initialisation: forget-gate bias 1, the other biases 0 (gates ordered i, f, c, o).
    np.testing.assert_array_equal(lstm.cell.bias.numpy(), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    # The time axis is open: a model trained at one length runs at any other.
    for seq_len in (1, 7, 123):
        assert model.predict(one_hot_pairs(np.zeros((2, seq_len), np.uint8)), verbose=0).shape == (2, seq_len, 2)


def test_forget_bias_sets_only_the_forget_gate_bias():
    lstm = reference_model(units=2, forget_bias=3.0).layers[0]
    np.testing.assert_array_equal(lstm.cell.bias.numpy(), [0, 0, 3, 3, 0, 0, 0, 0])


def test_member_k_starts_from_the_weights_a_single_run_with_seed_plus_k_starts_from():
    params = EASY_TRAIN.model_copy(update={"population": 3, "seed": 5, "forget_bias": 2.0})
    model = build_population(params)
    assert model.loss is population_loss and float(model.optimizer.learning_rate) == np.float32(0.01)
    for k in range(3):
        keras.utils.set_random_seed(5 + k)  # what a single run with train.seed = 5 + k does first
        alone = reference_model(units=2, forget_bias=2.0).get_weights()
        for a, b in zip(model.layers[-1].member(k), alone, strict=True):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(model.layers[-1].member(0)[0], model.layers[-1].member(1)[0])


def test_a_population_gives_each_member_the_outputs_of_its_reference_model():
    params = EASY_TRAIN.model_copy(update={"population": 3})
    population = build_population(params)
    inputs = one_hot_pairs(np.random.default_rng(0).integers(0, 2, (16, 30), dtype=np.uint8))
    together = keras.ops.softmax(population.predict(inputs, verbose=0), axis=-1)  # from each member's logits
    assert together.shape == (16, 30, 3, 2)
    final = keras.ops.convert_to_numpy(population.layers[-1].final_probabilities(inputs))
    for k in range(3):
        alone = reference_model(units=2)
        alone.set_weights(population.layers[-1].member(k))
        np.testing.assert_allclose(together[:, :, k], alone.predict(inputs, verbose=0), atol=1e-6)
        np.testing.assert_allclose(final[:, k], together[:, -1, k, 0], atol=1e-6)


def test_each_member_ends_with_the_weights_of_a_single_run_from_its_initial_weights():
    """Summed losses give each member its own gradient and Adam step: K=3 trained together equals 3 runs alone."""
    data = EASY_DATA.model_copy(update={"count": 1000})
    params = EASY_TRAIN.model_copy(update={"population": 3, "epochs": 2, "seed": 4})
    bits, val_bits, _ = generated(data)
    parity, supervised = running_parity(bits), every_step(bits)
    together = train(bits, parity, supervised, val_bits, running_parity(val_bits), params).population
    for k in range(3):
        alone = reference_model(params.units)
        alone.set_weights(initial_weights(params.seed + k, params.units, params.forget_bias))
        alone.compile(
            optimizer=keras.optimizers.Adam(params.learning_rate),
            loss="binary_crossentropy",
            jit_compile=True,
            steps_per_execution=STEPS_PER_EXECUTION,
        )
        # The same batch order: the one drawn from the population's train.seed.
        batches = shuffled_batches(bits, parity, supervised, params.batch_size, params.seed)
        alone.fit(batches, epochs=params.epochs, shuffle=False, verbose=0)
        for trained, single, start in zip(
            together.member(k), alone.get_weights(), initial_weights(params.seed + k, 2, 1.0), strict=True
        ):
            np.testing.assert_allclose(trained, single, rtol=1e-4, atol=2e-5)
            assert np.abs(single - start).max() > 1e-3  # both trained: the comparison can fail


def test_short_training_learns_parity_and_the_selected_member_is_saved_as_a_reference_model():
    trained = fit(EASY_TRAIN)
    assert trained.val_accuracy.shape == (EASY_TRAIN.epochs, 1) and trained.selected == 0
    model = member_model(trained, trained.selected, EASY_TRAIN)
    assert isinstance(model.layers[0], keras.layers.LSTM)
    _, _, test_bits = generated(EASY_DATA)
    metrics, _ = score(model.predict(one_hot_pairs(test_bits), verbose=0), running_parity(test_bits))
    assert metrics["final_step_accuracy"] > 0.95, metrics
    assert trained.val_accuracy[-1, 0] > 0.95


def test_same_seed_gives_the_same_weights():
    params = EASY_TRAIN.model_copy(update={"epochs": 1, "population": 2})
    first, second = (fit(params).population for _ in range(2))
    for k in range(2):
        for a, b in zip(first.member(k), second.member(k), strict=True):
            np.testing.assert_array_equal(a, b)


# Trains members briefly and prints a digest of their weights; run in a process of its own, since XLA reads XLA_FLAGS
# once a process.
TRAIN_AND_DIGEST = """
import hashlib, sys
from tests.test_train import EASY_TRAIN, fit
population = fit(EASY_TRAIN.model_copy(update={"units": int(sys.argv[1]), "population": 3, "epochs": 2})).population
print(hashlib.sha256(b"".join(w.tobytes() for k in range(3) for w in population.member(k))).hexdigest())
"""
ONE_KERNEL_OFF = "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=0"


def train_and_digest(units: int, xla_options: str = "", **environment: str) -> str:
    """The digest of `units`-unit members trained in a process of their own, with `xla_options` added to XLA_FLAGS
    as the environment has it (a run under `--xla_cpu_max_isa=...` keeps its ceiling)."""
    xla_flags = f"{os.environ.get('XLA_FLAGS', '')} {xla_options}".strip()
    result = subprocess.run(
        [sys.executable, "-c", TRAIN_AND_DIGEST, str(units)],
        env={**os.environ, **environment, "XLA_FLAGS": xla_flags, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()[-1]


def test_recurrent_loops_compiled_as_one_kernel_give_the_same_weights(tmp_path: Path):
    """`stages` has XLA compile each small recurrent loop into one kernel (its speed-up); threshold 0 turns that
    off. 1-unit members must train to the same bytes either way: the runs behind docs/results.md stay reproduced."""
    digests = {}
    for name, options in [("default", ""), ("off", ONE_KERNEL_OFF)]:
        dump = tmp_path / name
        digests[name] = train_and_digest(1, f"--xla_dump_to={dump} {options}")
        compiled = "".join(path.read_text() for path in dump.glob("*one_step_on_data*cpu_after_optimizations.txt"))
        assert "while" in compiled, "no training step was dumped"
        assert ("xla_cpu_small_call" in compiled) == (name == "default")
    assert digests["default"] == digests["off"]


def cache_entries(cache: Path) -> dict[str, set[str]]:
    """The persistent cache's executables: {file-name prefix: the graph keys (the rest of the name) under it}."""
    entries = defaultdict(set)
    for path in cache.iterdir():
        prefix, key = path.name.split("__", 1)
        entries[prefix].add(key)
    return entries


def test_the_persistent_compilation_cache_never_hands_back_what_other_xla_options_compiled(tmp_path: Path):
    """TensorFlow keys its opt-in persistent cache by the compiled graph, not by XLA_FLAGS (on some CPUs a default
    run handed the executables compiled with the one-kernel loops off trained to other bytes); `stages` names the
    XLA options in the cache's file names. Shown from the cache's files, whatever the CPU: the default run compiles
    the very graphs the loops-off run cached, stores them under a name of its own instead of reading those, and
    trains what it trains without a cache."""
    cache = {"TF_XLA_FLAGS": f"--tf_xla_persistent_cache_directory={tmp_path}"}
    train_and_digest(2, ONE_KERNEL_OFF, **cache)
    loops_off = cache_entries(tmp_path)
    assert len(loops_off) == 1, "nothing was cached"
    assert train_and_digest(2, **cache) == train_and_digest(2)
    entries = cache_entries(tmp_path)
    default = {prefix: keys for prefix, keys in entries.items() if prefix not in loops_off}
    assert default, "the default run stored nothing: it read the executables compiled with the loops off"
    assert list(default.values()) == list(loops_off.values()), "not the same graphs: the test shows nothing"
    assert entries == loops_off | default, "the default run changed the other options' entries"
    # The name is the options': a second default run finds its entries and stores nothing new.
    train_and_digest(2, **cache)
    assert cache_entries(tmp_path) == entries


# Imports TensorFlow as a stage does, compiles with XLA, and logs a warning through TensorFlow's logger.
START_TENSORFLOW = """
import stages, tensorflow as tf
tf.function(lambda x: x + 1, jit_compile=True)(tf.constant(1.0))
tf.get_logger().warning("a warning from TensorFlow")
"""


def test_tensorflow_starts_without_start_up_lines_and_still_shows_its_warnings():
    """On CPUs with AVX-512 VNNI or AMX, TensorFlow turns oneDNN on and announces it in absl lines; `stages` turns it
    off by default. TF_ENABLE_ONEDNN_OPTS=1 turns it on on any CPU, so the announcement is seen, whatever the CPU."""

    def stderr(**environment: str) -> str:
        # The defaults `stages` sets, unless the environment given sets them.
        unset = {"TF_ENABLE_ONEDNN_OPTS", "TF_CPP_MIN_LOG_LEVEL"}
        env = {name: value for name, value in os.environ.items() if name not in unset}
        env |= {"PYTHONPATH": str(REPO), **environment}
        result = subprocess.run([sys.executable, "-c", START_TENSORFLOW], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return result.stderr

    announced = stderr(TF_ENABLE_ONEDNN_OPTS="1")
    assert "oneDNN custom operations are on" in announced, "the announcement to hide did not show"
    assert stderr().splitlines() == ["WARNING:tensorflow:a warning from TensorFlow"]


def test_stop_at_accuracy_ends_training_at_the_first_epoch_a_member_reaches_it_on_validation():
    trained = fit(EASY_TRAIN.model_copy(update={"stop_at_accuracy": 0.9, "population": 2}))
    best = trained.val_accuracy.max(axis=1)
    assert len(best) < EASY_TRAIN.epochs
    assert best[-1] >= 0.9 and max(best[:-1], default=0) < 0.9


@pytest.mark.parametrize("mode", ["running", "final"])
def test_labels_the_loss_does_not_supervise_never_reach_the_weights(mode):
    data = EASY_DATA.model_copy(update={"min_len": 4})  # padded in front
    params = EASY_TRAIN.model_copy(update={"epochs": 1})

    def weights(flip_labels=None):
        return fit(params, data, mode, flip_labels).population.member(0)

    reference = weights()
    unsupervised_flipped = weights(lambda parity, supervised: np.where(supervised == 1, parity, 1 - parity))
    for a, b in zip(reference, unsupervised_flipped, strict=True):
        np.testing.assert_array_equal(a, b)
    # The comparison can fail: flipping the labels the loss does read changes the weights.
    changed = weights(lambda parity, supervised: 1 - parity)
    assert any(not np.array_equal(a, b) for a, b in zip(reference, changed, strict=True))


def test_converged_epoch_is_where_a_member_reached_the_threshold_for_good():
    val_accuracy = np.array(
        [
            [0.5, 0.5, 0.995, 0.5],
            [0.995, 0.5, 0.5, 0.999],
            [0.5, 0.995, 0.999, 0.999],
            [1.0, 0.999, 1.0, 0.98],
        ]
    )
    assert converged_epochs(val_accuracy) == [4, 3, 3, None]
    assert converged_epochs(np.full((2, 1), CONVERGED)) == [1]


def test_selection_takes_the_best_validation_accuracy_and_the_lowest_member_of_equals():
    assert select(np.array([0.5, 0.9999, 1.0, 1.0])) == 2
    assert select(np.array([0.7, 0.7])) == 0


def test_the_selected_member_is_saved_with_its_own_weights():
    params = EASY_TRAIN.model_copy(update={"population": 3, "units": 1})
    population = build_population(params).layers[-1]
    members = [population.member(k) for k in range(3)]
    members[2] = flip_flop_weights()
    population.set_members(members)
    trained = train_stage.Trained(population, np.zeros((1, 3)), selected=2)
    for a, b in zip(member_model(trained, 2, params).get_weights(), flip_flop_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("window_steps", [1 << 24, 24])  # one window; windows of 8 rows (2 batches)
def test_batches_hold_every_row_once_an_epoch_in_a_new_order(monkeypatch, window_steps):
    monkeypatch.setattr(train_stage, "WINDOW_STEPS", window_steps)
    bits = np.random.default_rng(0).integers(0, 3, size=(10, 3), dtype=np.uint8)  # 0, 1 and PAD (2)
    weights = np.arange(30, dtype=np.float32).reshape(10, 3)  # row r starts with 3r: tells the rows apart
    dataset = shuffled_batches(bits, running_parity(bits), weights, batch_size=4, seed=0)
    epochs = [list(dataset), list(dataset)]
    for batches in epochs:
        assert sorted(len(inputs) for inputs, _, _ in batches) == [2, 4, 4]
        inputs, targets, batch_weights = (np.concatenate(part) for part in zip(*batches, strict=True))
        rows = batch_weights[:, 0].astype(int) // 3
        assert sorted(rows) == list(range(10))
        assert inputs.dtype == targets.dtype == np.float32
        np.testing.assert_array_equal(inputs, one_hot_pairs(bits[rows]))
        np.testing.assert_array_equal(targets, one_hot_pairs(running_parity(bits)[rows]))
        if window_steps == 24:  # every batch from one window of consecutive rows: reads stay local
            assert all(len({int(w) // 24 for w in batch[:, 0]}) == 1 for _, _, batch in batches)
    assert not np.array_equal(*(np.concatenate([w for _, _, w in batches]) for batches in epochs))


def test_training_streamed_from_files_gives_the_weights_of_training_from_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(train_stage, "WINDOW_STEPS", 20 * 32 * EASY_DATA.seq_len)  # 7 windows of 640 rows
    bits, _, _ = generated(EASY_DATA)
    parity, supervised = running_parity(bits), every_step(bits)
    for name, array in (("bits", bits), ("parity", parity), ("weights", supervised)):
        np.save(tmp_path / f"train_{name}.npy", array)
    mapped = load_bits(tmp_path / "train_bits.npy")
    mapped_parity = load_parity(tmp_path / "train_parity.npy", mapped)
    mapped_weights = load_weights(tmp_path / "train_weights.npy", mapped)
    assert all(isinstance(array, np.memmap) for array in (mapped, mapped_parity, mapped_weights))
    params = EASY_TRAIN.model_copy(update={"epochs": 1})
    _, val_bits, _ = generated(EASY_DATA)
    validation = (val_bits, running_parity(val_bits))
    from_files = train(mapped, mapped_parity, mapped_weights, *validation, params).population.member(0)
    in_memory = train(bits, parity, supervised, *validation, params).population.member(0)
    for a, b in zip(in_memory, from_files, strict=True):
        np.testing.assert_array_equal(a, b)


def test_validation_scores_every_member_the_same_in_chunks_of_any_size(monkeypatch):
    params = EASY_TRAIN.model_copy(update={"population": 3, "units": 1})
    model = build_population(params)
    population = model.layers[-1]
    population.set_members([population.member(0), flip_flop_weights(), population.member(2)])
    _, val_bits, _ = generated(EASY_DATA)
    validation = train_stage.Validation(val_bits, running_parity(val_bits))
    validation.set_model(model)
    validation.on_train_begin()
    whole = validation.accuracy()
    assert whole[1] == 1.0 and whole[0] < 1.0  # the flip-flop member is exactly right
    monkeypatch.setattr(train_stage, "VALIDATION_CHUNK", 7 * EASY_DATA.seq_len * 3)  # 7 rows a chunk
    np.testing.assert_array_equal(validation.accuracy(), whole)
