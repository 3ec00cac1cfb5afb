"""Training: the population's members, what the keras engine computes, learning, stopping, selection."""

import keras
import numpy as np

from parity_lstm.data.encoding import one_hot_pairs, running_parity
from parity_lstm.engines.keras.batches import shuffled_batches
from parity_lstm.engines.keras.fit import STEPS_PER_EXECUTION, build_population
from parity_lstm.engines.keras.oracle import keras_model
from parity_lstm.engines.keras.population import population_loss
from parity_lstm.model import Layout, initial_members, initial_weights
from parity_lstm.rates import CONVERGED
from parity_lstm.scoring import score
from parity_lstm.trained import TrainedModel
from parity_lstm.training import Validation, converged_epochs, select, train
from tests.arrays import generated
from tests.conftest import flip_flop_weights
from tests.easy_fit import EASY_DATA, EASY_TRAIN, every_step, fit


def test_member_k_starts_from_the_initial_weights_of_seed_plus_k_in_both_engines():
    params = EASY_TRAIN.model_copy(update={"population": 3, "seed": 5, "forget_bias": 2.0})
    initial = initial_members(params.seed, params.population, Layout(params.units), params.forget_bias)
    model = build_population(params, initial)
    assert model.loss is population_loss and float(model.optimizer.learning_rate) == np.float32(0.01)
    for k in range(3):
        alone = initial_weights(
            5 + k, Layout(2), forget_bias=2.0
        )  # what a lone run with train.seed = 5 + k starts from
        assert initial[k].tobytes() == Layout(2).flatten(alone).tobytes()
        for a, b in zip(model.layers[-1].member(k), alone, strict=True):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(initial[0], initial[1])


def test_a_population_gives_each_member_the_outputs_of_its_model_alone():
    params = EASY_TRAIN.model_copy(update={"population": 3})
    population = build_population(params, initial_members(params.seed, 3, Layout(params.units), params.forget_bias))
    inputs = one_hot_pairs(np.random.default_rng(0).integers(0, 2, (16, 30), dtype=np.uint8))
    together = keras.ops.softmax(population.predict(inputs, verbose=0), axis=-1)  # from each member's logits
    assert together.shape == (16, 30, 3, 2)
    for k in range(3):
        alone = keras_model(population.layers[-1].member(k), Layout(params.units))
        np.testing.assert_allclose(together[:, :, k], alone.predict(inputs, verbose=0), atol=1e-6)


def test_a_keras_engine_member_ends_with_the_weights_of_a_single_run_from_its_initial_weights():
    """Summed losses give each member its own gradient and Adam step: member 1 of 2, trained together by the keras
    engine, ends where a lone Keras model from seed + 1 ends, trained by Keras on the same batches."""
    data = EASY_DATA.model_copy(update={"count": 1000})
    params = EASY_TRAIN.model_copy(update={"population": 2, "epochs": 2, "seed": 4, "engine": "keras"})
    bits, val_bits, _ = generated(data)
    parity, factors = running_parity(bits), every_step(bits)
    together = train(bits, parity, factors, val_bits, running_parity(val_bits), params)
    start = initial_weights(params.seed + 1, Layout(params.units), params.forget_bias)
    alone = keras_model(start, Layout(params.units))
    alone.compile(
        optimizer=keras.optimizers.Adam(params.learning_rate),
        loss="binary_crossentropy",
        jit_compile=True,
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    batches = shuffled_batches(bits, parity, factors, params.batch_size, params.seed)  # the population's order
    alone.fit(batches, epochs=params.epochs, shuffle=False, verbose=0)
    trained = Layout(params.units).unflatten(together.members[1])
    for ours, single, initial in zip(trained, alone.get_weights(), start, strict=True):
        np.testing.assert_allclose(ours, single, rtol=1e-4, atol=2e-5)
        assert np.abs(single - initial).max() > 1e-3  # both trained: the comparison can fail


def test_short_training_learns_parity():
    trained = fit(EASY_TRAIN)
    assert trained.val_accuracy.shape == (EASY_TRAIN.epochs, 1) and trained.selected == 0
    _, _, test_bits = generated(EASY_DATA)
    probability = TrainedModel(trained.members[0], Layout(EASY_TRAIN.units)).probability_of_one(test_bits).T
    metrics, _ = score(probability, running_parity(test_bits))
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

    def weights(flip_labels=None) -> np.ndarray:
        return fit(params, data, "final", flip_labels).members[0]

    reference = weights()
    unsupervised_flipped = weights(lambda parity, factors: np.where(factors > 0, parity, 1 - parity))
    assert reference.tobytes() == unsupervised_flipped.tobytes()
    all_flipped = weights(lambda parity, factors: 1 - parity)
    assert not np.array_equal(reference, all_flipped)


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


def test_validation_scores_each_member_as_its_keras_model_does():
    members = initial_members(seed=0, members=3, layout=Layout(1))
    members[1] = Layout(1).flatten(flip_flop_weights())
    _, val_bits, _ = generated(EASY_DATA)
    parity = running_parity(val_bits)
    accuracy = Validation(val_bits, parity, Layout(1)).accuracy(members)
    assert accuracy[1] == 1.0 and accuracy[0] < 1.0  # the flip-flop member is exactly right
    for k in range(3):
        model = keras_model(Layout(1).unflatten(members[k]), Layout(1))
        keras_says_odd = model.predict(one_hot_pairs(val_bits), verbose=0)[:, -1, 0] > 0.5
        assert accuracy[k] == np.mean(keras_says_odd == (parity[:, -1] == 1))
