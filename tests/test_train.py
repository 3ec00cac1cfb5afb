import keras
import numpy as np

from stages import fused
from stages.batches import shuffled_batches
from stages.encoding import one_hot_pairs, running_parity
from stages.evaluate import score
from stages.keras_engine import STEPS_PER_EXECUTION, build_population
from stages.population import population_loss
from stages.train import (
    CONVERGED,
    Trained,
    Validation,
    converged_epochs,
    initial_members,
    initial_weights,
    member_model,
    reference_model,
    select,
    train,
)
from tests.arrays import generated
from tests.conftest import flip_flop_weights
from tests.easy_fit import EASY_DATA, EASY_TRAIN, every_step, fit


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
    model = build_population(params, initial_members(params))
    assert model.loss is population_loss and float(model.optimizer.learning_rate) == np.float32(0.01)
    for k in range(3):
        keras.utils.set_random_seed(5 + k)  # what a single run with train.seed = 5 + k does first
        alone = reference_model(units=2, forget_bias=2.0).get_weights()
        for a, b in zip(model.layers[-1].member(k), alone, strict=True):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(model.layers[-1].member(0)[0], model.layers[-1].member(1)[0])


def test_a_population_gives_each_member_the_outputs_of_its_reference_model():
    params = EASY_TRAIN.model_copy(update={"population": 3})
    population = build_population(params, initial_members(params))
    inputs = one_hot_pairs(np.random.default_rng(0).integers(0, 2, (16, 30), dtype=np.uint8))
    together = keras.ops.softmax(population.predict(inputs, verbose=0), axis=-1)  # from each member's logits
    assert together.shape == (16, 30, 3, 2)
    for k in range(3):
        alone = reference_model(units=2)
        alone.set_weights(population.layers[-1].member(k))
        np.testing.assert_allclose(together[:, :, k], alone.predict(inputs, verbose=0), atol=1e-6)


def test_a_keras_engine_member_ends_with_the_weights_of_a_single_run_from_its_initial_weights():
    """Summed losses give each member its own gradient and Adam step: member 1 of 2, trained together by the Keras
    engine, ends where a lone reference model from seed + 1 ends, trained by Keras on the same batches."""
    data = EASY_DATA.model_copy(update={"count": 1000})
    params = EASY_TRAIN.model_copy(update={"population": 2, "epochs": 2, "seed": 4, "engine": "keras"})
    bits, val_bits, _ = generated(data)
    parity, supervised = running_parity(bits), every_step(bits)
    together = train(bits, parity, supervised, val_bits, running_parity(val_bits), params)
    start = initial_weights(params.seed + 1, params.units, params.forget_bias)
    alone = reference_model(params.units)
    alone.set_weights(start)
    alone.compile(
        optimizer=keras.optimizers.Adam(params.learning_rate),
        loss="binary_crossentropy",
        jit_compile=True,
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    batches = shuffled_batches(bits, parity, supervised, params.batch_size, params.seed)  # the population's order
    alone.fit(batches, epochs=params.epochs, shuffle=False, verbose=0)
    for trained, single, initial in zip(together.member(1), alone.get_weights(), start, strict=True):
        np.testing.assert_allclose(trained, single, rtol=1e-4, atol=2e-5)
        assert np.abs(single - initial).max() > 1e-3  # both trained: the comparison can fail


def test_short_training_learns_parity_and_the_selected_member_is_saved_as_a_reference_model():
    trained = fit(EASY_TRAIN)
    assert trained.val_accuracy.shape == (EASY_TRAIN.epochs, 1) and trained.selected == 0
    model = member_model(trained, trained.selected, EASY_TRAIN)
    assert isinstance(model.layers[0], keras.layers.LSTM)
    _, _, test_bits = generated(EASY_DATA)
    metrics, _ = score(model.predict(one_hot_pairs(test_bits), verbose=0)[..., 0], running_parity(test_bits))
    assert metrics["final_step_accuracy"] > 0.95, metrics
    assert trained.val_accuracy[-1, 0] > 0.95


def test_stop_at_accuracy_ends_training_at_the_first_epoch_a_member_reaches_it_on_validation():
    trained = fit(EASY_TRAIN.model_copy(update={"stop_at_accuracy": 0.9, "population": 2}))
    best = trained.val_accuracy.max(axis=1)
    assert len(best) < EASY_TRAIN.epochs
    assert best[-1] >= 0.9 and max(best[:-1], default=0) < 0.9


def test_labels_the_loss_does_not_supervise_never_reach_the_weights():
    """In `final` mode on data padded in front, the loss reads the last step's label only: flipping every other
    label changes no weight, flipping them all does (the control that shows the comparison can fail)."""
    data = EASY_DATA.model_copy(update={"min_len": 4})
    params = EASY_TRAIN.model_copy(update={"epochs": 1})

    def weights(flip_labels=None) -> list[np.ndarray]:
        return fit(params, data, "final", flip_labels).member(0)

    reference = weights()
    unsupervised_flipped = weights(lambda parity, supervised: np.where(supervised == 1, parity, 1 - parity))
    for a, b in zip(reference, unsupervised_flipped, strict=True):
        np.testing.assert_array_equal(a, b)
    all_flipped = weights(lambda parity, supervised: 1 - parity)
    assert any(not np.array_equal(a, b) for a, b in zip(reference, all_flipped, strict=True))


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
    members = initial_members(params)
    members[2] = fused.flatten(flip_flop_weights())
    trained = Trained(members, np.zeros((1, 3)), selected=2)
    for a, b in zip(member_model(trained, 2, params).get_weights(), flip_flop_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_validation_scores_each_member_as_its_keras_model_does():
    params = EASY_TRAIN.model_copy(update={"population": 3, "units": 1})
    members = initial_members(params)
    members[1] = fused.flatten(flip_flop_weights())
    _, val_bits, _ = generated(EASY_DATA)
    parity = running_parity(val_bits)
    accuracy = Validation(val_bits, parity).accuracy(members)
    assert accuracy[1] == 1.0 and accuracy[0] < 1.0  # the flip-flop member is exactly right
    for k in range(3):
        model = reference_model(units=1)
        model.set_weights(fused.unflatten(members[k]))
        keras_says_odd = model.predict(one_hot_pairs(val_bits), verbose=0)[:, -1, 0] > 0.5
        assert accuracy[k] == np.mean(keras_says_odd == (parity[:, -1] == 1))
