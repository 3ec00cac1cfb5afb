"""Stage `train`: a population of reference models, LSTM(units, per-step outputs) -> Dense(2, softmax), fit on
per-step parity; the member that does best on the validation set is saved as an ordinary reference model.

input  [[1,0] [0,1] [1,0]]     bits 1 0 1, each as the pair [x, 1-x]
target [[1,0] [1,0] [0,1]]     running parity 1 1 0, paired the same way

With `train.population: 1` (the default) this is the reference experiment: one model from `train.seed`.
`train.engine` picks who trains: `fused` (stages/fused_engine.py, the default) or `keras` (stages/keras_engine.py,
TensorFlow). Both start from the same weights, see the same batches and are validated by the same forward pass.
"""

import gc
import signal
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
from dvclive import Live

from stages import fused, fused_engine, keras_engine
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
from stages.xla import set_training_options

# Validation final-step accuracy from which a member counts as converged.
CONVERGED = 0.99
# Significant digits of the logged training loss: its later digits follow the weights' last bits, and an epoch's
# mean loss means nothing finer.
LOSS_DIGITS = 4
ENGINES = {"fused": fused_engine.fit, "keras": keras_engine.fit}


def reference_model(units: int, forget_bias: float = 1.0) -> keras.Sequential:
    """The reference architecture; the time axis is left open so any sequence length can be fed."""
    # Keras orders the gates' biases i, f, c, o; forget_bias=1 is Keras' own `unit_forget_bias` default.
    bias = np.concatenate([np.zeros(units), np.full(units, forget_bias), np.zeros(2 * units)]).tolist()
    # Names of its own: Keras numbers unnamed models and layers by how many the process built before (lstm_2), and
    # the model file records them, so its bytes would depend on the population size.
    return keras.Sequential(
        [
            keras.Input((None, 2), name="bits"),
            keras.layers.LSTM(
                units,
                return_sequences=True,
                unit_forget_bias=False,
                bias_initializer=keras.initializers.Constant(bias),
                name="lstm",
            ),
            keras.layers.Dense(2, activation="softmax", name="dense"),
        ],
        name="reference_model",
    )


def initial_weights(seed: int, units: int, forget_bias: float) -> list[np.ndarray]:
    """The weights a reference model starts from when Keras is seeded with `seed`."""
    keras.utils.set_random_seed(seed)
    return reference_model(units, forget_bias).get_weights()


def initial_members(params: TrainParams) -> np.ndarray:
    """Member k starts from `initial_weights(seed + k)`: a member a flat row."""
    return np.stack(
        [
            fused.flatten(initial_weights(params.seed + k, params.units, params.forget_bias))
            for k in range(params.population)
        ]
    )


class Validation:
    """Scores every member on the validation set: its final-step accuracy, the parity of the whole sequence."""

    def __init__(self, bits: np.ndarray, parity: np.ndarray):
        self.bits, self.odd = bits, parity[:, -1] == 1

    def accuracy(self, members: np.ndarray) -> np.ndarray:
        """Each member's (a flat row of `members`) final-step accuracy, (members,)."""
        probability = fused.probability_of_one(members, self.bits, final_only=True)[0]  # (rows, members)
        return (fused.predicted_odd(probability) == self.odd[:, None]).mean(axis=0)


class Signals:
    """Ctrl-C (SIGINT) or SIGTERM while training is noted; the engine ends training at its next batch by raising
    KeyboardInterrupt itself. Raised by the signal handler, it could land in library code that swallows it: a run
    under `dvc repro` was seen training on after Ctrl-C."""

    def __enter__(self) -> Callable[[], bool]:
        self.received = False
        self.previous = {sig: signal.signal(sig, self.note) for sig in (signal.SIGINT, signal.SIGTERM)}
        return lambda: self.received

    def note(self, signum: int, frame) -> None:
        self.received = True

    def __exit__(self, *exception) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


@dataclass
class Trained:
    members: np.ndarray  # (members, weights): each member's weights at the end, flat (`fused.flatten`)
    val_accuracy: np.ndarray  # (epochs, members): validation final-step accuracy of each member after each epoch
    selected: int

    def member(self, k: int) -> list[np.ndarray]:
        """Member k's weights, in the reference model's `get_weights()` order."""
        return fused.unflatten(self.members[k])


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
    on_epoch: Callable[[float, np.ndarray], None] = lambda loss, accuracy: None,
) -> Trained:
    """Fit a fresh population with `params.engine`, each step's loss weighted by `supervised`, and pick its best
    member on the validation set; the same params and data give the same weights. After each epoch,
    `on_epoch(mean member loss, each member's validation accuracy)`."""
    initial = initial_members(params)
    keras.utils.set_random_seed(params.seed)  # the members' initialisation reseeded Keras once for each
    validation, by_epoch = Validation(val_bits, val_parity), []

    def end_of_epoch(loss: float, members: np.ndarray) -> bool:
        accuracy = validation.accuracy(members)
        by_epoch.append(accuracy)
        print(
            f"validation: best final-step accuracy {accuracy.max():.4f}, "
            f"{int((accuracy >= CONVERGED).sum())}/{len(accuracy)} members converged",
            flush=True,
        )
        on_epoch(loss, accuracy)
        return params.stop_at_accuracy is not None and accuracy.max() >= params.stop_at_accuracy

    with Signals() as interrupted:
        members = ENGINES[params.engine](initial, (bits, parity, supervised), params, end_of_epoch, interrupted)
    val_accuracy = np.array(by_epoch)
    return Trained(members=members, val_accuracy=val_accuracy, selected=select(val_accuracy[-1]))


def member_model(trained: Trained, k: int, params: TrainParams) -> keras.Model:
    """Member k as an ordinary reference model, the one `evaluate` and `predict` load."""
    model = reference_model(params.units, params.forget_bias)
    model.set_weights(trained.member(k))
    return model


def log_epoch(live: Live, loss: float, accuracy: np.ndarray) -> None:
    """Per-epoch figures to dvclive that stay readable for any population size."""
    live.log_metric("train/loss", float(f"{loss:.{LOSS_DIGITS}g}"))
    live.log_metric("val/best_final_step_accuracy", float(accuracy.max()))
    live.log_metric("val/converged_share", float((accuracy >= CONVERGED).mean()))
    live.next_step()


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
    set_training_options()  # the Keras engine's, before its first compile, when XLA reads them
    params = load_params("train", TrainParams)
    bits = load_bits(TRAIN_BITS)
    parity, supervised = load_parity(TRAIN_PARITY, bits), load_weights(TRAIN_WEIGHTS, bits)
    val_bits = load_bits(VAL_BITS)
    val_parity = load_parity(VAL_PARITY, val_bits)
    try:
        # One dvclive directory for this stage; dvc.yaml declares its files, so dvclive must not edit dvc.yaml.
        with Live(dir=str(METRICS_DIR / "train"), dvcyaml=False, save_dvc_exp=False) as live:
            trained = train(
                bits, parity, supervised, val_bits, val_parity, params, lambda *epoch: log_epoch(live, *epoch)
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
