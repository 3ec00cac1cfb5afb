"""The `keras` training engine: the population as one Keras model (population.py) fit by TensorFlow with XLA. The
oracle the fused engine is tested against, and, being backend-neutral Keras, the route to accelerators.
"""

import sys

import keras
import numpy as np

from parity_lstm.engines import EndOfEpoch, Interrupted, TrainingData
from parity_lstm.engines.keras.batches import shuffled_batches
from parity_lstm.engines.keras.population import Population, population_loss
from parity_lstm.engines.keras.xla import set_training_options
from parity_lstm.params import TrainParams

# Batches per call into the compiled training loop: a whole default epoch, so Python runs once an epoch.
STEPS_PER_EXECUTION = 1024


def build_population(params: TrainParams, initial: np.ndarray) -> keras.Model:
    """`params.population` models as one compiled Keras model; member k starts from `initial[k]`, a flat row."""
    inputs = keras.Input((None, 2))
    population = Population(params.population, params.units, params.cell)
    model = keras.Model(inputs, population(inputs))
    population.set_members([population.layout.unflatten(row) for row in initial])
    model.compile(
        optimizer=keras.optimizers.Adam(params.learning_rate),
        loss=population_loss,  # the sum of the members' losses: each member's gradient is its own
        jit_compile=True,
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    # Built now, not lazily in the first step, so the compiled step is not traced a second time in epoch 2.
    model.optimizer.build(model.trainable_variables)
    return model


def members(population: Population) -> np.ndarray:
    """The population's weights, a member a flat row."""
    return np.stack([population.layout.flatten(population.member(k)) for k in range(population.members)])


class EpochEnd(keras.callbacks.Callback):
    """Hands each epoch's mean member loss and the members' weights to `end_of_epoch`; stops when it says so. Ends
    training at the next batch once `interrupted()` says so, by raising KeyboardInterrupt from here."""

    def __init__(self, end_of_epoch: EndOfEpoch, interrupted: Interrupted):
        super().__init__()
        self.end_of_epoch, self.interrupted = end_of_epoch, interrupted

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.interrupted():
            raise KeyboardInterrupt

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.on_train_batch_end(-1)
        population = self.model.layers[-1]
        if self.end_of_epoch(logs["loss"] / population.members, members(population)):
            self.model.stop_training = True


def fit(
    initial: np.ndarray, data: TrainingData, params: TrainParams, end_of_epoch: EndOfEpoch, interrupted: Interrupted
) -> np.ndarray:
    """As the fused engine's fit: the members' weights after training from `initial` on `data`."""
    set_training_options()  # before the first compile, when XLA reads them
    model = build_population(params, initial)
    model.fit(
        shuffled_batches(*data, params.batch_size, params.seed),
        epochs=params.epochs,
        shuffle=False,  # the dataset shuffles itself
        callbacks=[EpochEnd(end_of_epoch, interrupted)],
        # A live bar on a terminal; one line per epoch in logs (dvc repro, CI).
        verbose=1 if sys.stdout.isatty() else 2,
    )
    return members(model.layers[-1])
