"""Stage `train`: a population of reference models, LSTM(units, per-step outputs) -> Dense(2, softmax), fit on
per-step parity; the member that does best on the validation set is saved as an ordinary reference model.

input  [[1,0] [0,1] [1,0]]     bits 1 0 1, each as the pair [x, 1-x]
target [[1,0] [1,0] [0,1]]     running parity 1 1 0, paired the same way

With `train.population: 1` (the default) this is the reference experiment: one model from `train.seed`.
"""

import gc
import signal
import sys
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from dvclive import Live

from stages.batches import shuffled_batches
from stages.encoding import one_hot_pairs
from stages.files import (
    METRICS_DIR,
    TRAIN_BITS,
    TRAIN_PARITY,
    TRAIN_WEIGHTS,
    VAL_BITS,
    VAL_PARITY,
    load_bits,
    load_parity,
    load_weights,
)
from stages.model_file import save_model
from stages.params import TrainParams, load_params
from stages.population import Population, population_loss
from stages.xla import set_training_options

# Validation final-step accuracy from which a member counts as converged.
CONVERGED = 0.99
# Batches per call into the compiled training loop: a whole default epoch, so Python runs once an epoch.
STEPS_PER_EXECUTION = 1024
# Sequence steps times members scored in one call on the validation set: bounds its memory at any size.
VALIDATION_CHUNK = 1 << 22
# Significant digits of the logged training loss: its later digits follow the weights' last bits, which the CPU's
# instruction set decides (docs/reproducibility.md), and an epoch's mean loss means nothing finer.
LOSS_DIGITS = 4


def reference_model(units: int, forget_bias: float = 1.0) -> keras.Sequential:
    """The reference architecture; the time axis is left open so any sequence length can be fed."""
    # Keras orders the gates' biases i, f, c, o; forget_bias=1 is Keras' own `unit_forget_bias` default.
    bias = np.concatenate([np.zeros(units), np.full(units, forget_bias), np.zeros(2 * units)]).tolist()
    return keras.Sequential(
        [
            keras.Input((None, 2)),
            keras.layers.LSTM(
                units,
                return_sequences=True,
                unit_forget_bias=False,
                bias_initializer=keras.initializers.Constant(bias),
            ),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )


def initial_weights(seed: int, units: int, forget_bias: float) -> list[np.ndarray]:
    """The weights a reference model starts from when Keras is seeded with `seed`."""
    keras.utils.set_random_seed(seed)
    return reference_model(units, forget_bias).get_weights()


def build_population(params: TrainParams) -> keras.Model:
    """`params.population` reference models as one Keras model; member k starts from `initial_weights(seed + k)`."""
    inputs = keras.Input((None, 2))
    population = Population(params.population, params.units)
    model = keras.Model(inputs, population(inputs))
    population.set_members(
        [initial_weights(params.seed + k, params.units, params.forget_bias) for k in range(params.population)]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(params.learning_rate),
        loss=population_loss,  # the sum of the members' losses: each member's gradient is its own
        jit_compile=True,
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    # Built now, not lazily in the first step, so the compiled step is not traced a second time in epoch 2.
    model.optimizer.build(model.trainable_variables)
    return model


class Validation(keras.callbacks.Callback):
    """Scores every member on the validation set after each epoch: its final-step accuracy, the parity of the
    whole sequence. Stops training once a member reaches `stop_at` (None: never)."""

    def __init__(self, bits: np.ndarray, parity: np.ndarray, stop_at: float | None = None):
        super().__init__()
        self.bits, self.final_parity, self.stop_at = bits, parity[:, -1], stop_at
        self.by_epoch: list[np.ndarray] = []  # (members,) final-step accuracies, one array an epoch

    def on_train_begin(self, logs: dict | None = None) -> None:
        population = self.model.layers[-1]
        # One traced function for every shape of input.
        self.final_probabilities = tf.function(
            population.final_probabilities, input_signature=[tf.TensorSpec((None, None, 2))]
        )

    def accuracy(self) -> np.ndarray:
        """Each member's final-step accuracy on the validation set, (members,), scored in chunks of rows."""
        members = self.model.layers[-1].members
        chunk = max(1, VALIDATION_CHUNK // (self.bits.shape[1] * members))
        right = np.zeros(members, np.int64)
        for start in range(0, len(self.bits), chunk):
            probability_of_one = self.final_probabilities(one_hot_pairs(self.bits[start : start + chunk])).numpy()
            odd = self.final_parity[start : start + chunk, None] == 1
            right += ((probability_of_one > 0.5) == odd).sum(axis=0)
        return right / len(self.bits)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        accuracy = self.accuracy()
        self.by_epoch.append(accuracy)
        logs["val_best_final_step_accuracy"] = float(accuracy.max())
        logs["val_converged_share"] = float((accuracy >= CONVERGED).mean())
        if self.stop_at is not None and accuracy.max() >= self.stop_at:
            self.model.stop_training = True


class StopOnSignal(keras.callbacks.Callback):
    """Ctrl-C (SIGINT) or SIGTERM during `fit` ends training when the compiled loop next returns, by raising
    KeyboardInterrupt from here. Raised by the signal handler itself, it could land in library code that swallows
    it: a run under `dvc repro` was seen training on after Ctrl-C."""

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.signalled = False
        self.previous = {sig: signal.signal(sig, self.note) for sig in (signal.SIGINT, signal.SIGTERM)}

    def note(self, signum: int, frame) -> None:
        self.signalled = True

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.signalled:
            raise KeyboardInterrupt

    on_epoch_end = on_train_batch_end

    def on_train_end(self, logs: dict | None = None) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


@dataclass
class Trained:
    population: Population
    val_accuracy: np.ndarray  # (epochs, members): validation final-step accuracy of each member after each epoch
    selected: int


def converged_epochs(val_accuracy: np.ndarray) -> list[int | None]:
    """Per member: the 1-based epoch from which its validation final-step accuracy stayed >= CONVERGED to the end;
    None if it ended below."""
    below = val_accuracy < CONVERGED
    last_below = np.where(below.any(axis=0), len(below) - 1 - np.argmax(below[::-1], axis=0), -1)
    return [None if below[-1, k] else int(last_below[k]) + 2 for k in range(below.shape[1])]


def select(val_accuracy: np.ndarray) -> int:
    """The member with the best validation final-step accuracy; ties: the lowest k. Validation accuracy also
    predicts which members hold at lengths far beyond training (docs/results.md)."""
    return int(np.argmax(val_accuracy))  # the first of equals


def train(
    bits: np.ndarray,
    parity: np.ndarray,
    supervised: np.ndarray,
    val_bits: np.ndarray,
    val_parity: np.ndarray,
    params: TrainParams,
    callbacks=(),
) -> Trained:
    """Fit a fresh population, each step's loss weighted by `supervised`, and pick its best member on the validation
    set; the same params and data give the same weights."""
    model = build_population(params)
    keras.utils.set_random_seed(params.seed)  # the members' initialisation reseeded Keras once for each
    validation = Validation(val_bits, val_parity, params.stop_at_accuracy)
    model.fit(
        shuffled_batches(bits, parity, supervised, params.batch_size, params.seed),
        epochs=params.epochs,
        shuffle=False,  # the dataset shuffles itself
        callbacks=[StopOnSignal(), validation, *callbacks],
        # A live bar on a terminal; one line per epoch in logs (dvc repro, CI).
        verbose=1 if sys.stdout.isatty() else 2,
    )
    val_accuracy = np.array(validation.by_epoch)
    return Trained(population=model.layers[-1], val_accuracy=val_accuracy, selected=select(val_accuracy[-1]))


def member_model(trained: Trained, k: int, params: TrainParams) -> keras.Model:
    """Member k as an ordinary reference model, the one `evaluate` and `predict` load."""
    model = reference_model(params.units, params.forget_bias)
    model.set_weights(trained.population.member(k))
    return model


class LogEpoch(keras.callbacks.Callback):
    """Per-epoch figures to dvclive that stay readable for any population size."""

    def __init__(self, live: Live, members: int):
        super().__init__()
        self.live, self.members = live, members

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = logs["loss"] / self.members  # a member's mean loss
        self.live.log_metric("train/loss", float(f"{loss:.{LOSS_DIGITS}g}"))
        self.live.log_metric("val/best_final_step_accuracy", logs["val_best_final_step_accuracy"])
        self.live.log_metric("val/converged_share", logs["val_converged_share"])
        self.live.next_step()


def log_results(live: Live, trained: Trained, params: TrainParams) -> None:
    """The selected member's validation curve and the population's summary."""
    last_step = live.step
    for step, accuracy in enumerate(trained.val_accuracy[:, trained.selected]):
        live.step = step
        live.log_metric("val/selected_final_step_accuracy", float(accuracy))
    live.step = last_step
    epochs = converged_epochs(trained.val_accuracy)
    live.summary |= {
        "population": params.population,
        "converged_members": sum(epoch is not None for epoch in epochs),
        "selected_member": trained.selected,
        "converged_epoch": epochs[trained.selected],
        # A string: `dvc exp show` drops lists and nulls from metrics. "-": not converged.
        "member_converged_epochs": " ".join("-" if epoch is None else str(epoch) for epoch in epochs),
    }


def main() -> None:
    # SIGTERM (`kill`, a job scheduler) stops training the way Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    set_training_options()  # before the first compile, when XLA reads them
    params = load_params("train", TrainParams)
    bits = load_bits(TRAIN_BITS)
    parity, supervised = load_parity(TRAIN_PARITY, bits), load_weights(TRAIN_WEIGHTS, bits)
    val_bits = load_bits(VAL_BITS)
    val_parity = load_parity(VAL_PARITY, val_bits)
    try:
        # One dvclive directory for this stage; dvc.yaml declares its files, so dvclive must not edit dvc.yaml.
        with Live(dir=str(METRICS_DIR / "train"), dvcyaml=False, save_dvc_exp=False) as live:
            trained = train(
                bits, parity, supervised, val_bits, val_parity, params, callbacks=[LogEpoch(live, params.population)]
            )
            log_results(live, trained, params)  # written as Live ends
        save_model(member_model(trained, trained.selected, params))
    except KeyboardInterrupt:
        raise SystemExit("train: interrupted, no model written; `dvc repro` trains again") from None


if __name__ == "__main__":
    main()
    # Everything is written. The interpreter's last garbage collections at exit would walk TensorFlow's millions of
    # objects; frozen, they are skipped. Exit handlers still run.
    gc.freeze()
