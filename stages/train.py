"""Stage `train`: a population of models (parity_lstm.model), a recurrent cell (`train.cell`) of `train.units` units,
an output every step, into Dense(2, softmax), fit on per-step parity; the member that does best on the validation set
is saved as models/model.keras, and every member, in member order, as models/members.npy (what `evaluate` scores
member by member).

input  [[1,0] [0,1] [1,0]]     bits 1 0 1, each as the pair [x, 1-x]
target [[1,0] [1,0] [0,1]]     running parity 1 1 0, paired the same way

With `train.population: 1` (the default) this is the reference experiment: one model from `train.seed`.
`train.engine` picks who trains: `fused` (the default) or `keras` (TensorFlow) (parity_lstm/engines). Both start from
the same weights, see the same batches and are validated by the same forward pass.
"""

import signal
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from dvclive import Live

from parity_lstm.data.files import (
    METRICS_DIR,
    TRAIN_BITS,
    TRAIN_LOSS_FACTORS,
    TRAIN_PARITY,
    VAL_BITS,
    VAL_PARITY,
    load_bits,
    load_loss_factors,
    load_parity,
)
from parity_lstm.engines import engine
from parity_lstm.model import Layout, initial_members, save_members, save_model
from parity_lstm.params import TrainParams, load_params
from parity_lstm.rates import CONVERGED
from parity_lstm.scoring import final_step_right

# Significant digits of the logged training loss: its later digits follow the weights' last bits, and an epoch's
# mean loss means nothing finer.
LOSS_DIGITS = 4


class Validation:
    """Scores every member on the validation set: its final-step accuracy, the parity of the whole sequence."""

    def __init__(self, bits: np.ndarray, parity: np.ndarray, layout: Layout):
        self.bits, self.odd, self.layout = bits, parity[:, -1] == 1, layout

    def accuracy(self, members: np.ndarray) -> np.ndarray:
        """Each member's (a flat row of `members`) final-step accuracy, (members,)."""
        return final_step_right(members, self.layout, self.bits, self.odd) / len(self.bits)


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
    members: np.ndarray  # (members, weights): each member's weights at the end, a flat row
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
    loss_factors: np.ndarray,
    val_bits: np.ndarray,
    val_parity: np.ndarray,
    params: TrainParams,
    on_epoch: Callable[[float, np.ndarray], None] = lambda loss, accuracy: None,
) -> Trained:
    """Fit a fresh population with `params.engine`, each step's loss times its factor, and pick its best member on
    the validation set; the same params and data give the same weights. After each epoch,
    `on_epoch(mean member loss, each member's validation accuracy)`."""
    layout = Layout(params.units, params.cell)
    initial = initial_members(params.seed, params.population, layout, params.forget_bias)
    validation, by_epoch = Validation(val_bits, val_parity, layout), []

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
        members = engine(params.engine)(initial, (bits, parity, loss_factors), params, end_of_epoch, interrupted)
    val_accuracy = np.array(by_epoch)
    return Trained(members=members, val_accuracy=val_accuracy, selected=select(val_accuracy[-1]))


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
    params = load_params("train", TrainParams)
    bits = load_bits(TRAIN_BITS)
    parity, loss_factors = load_parity(TRAIN_PARITY, bits), load_loss_factors(TRAIN_LOSS_FACTORS, bits)
    val_bits = load_bits(VAL_BITS)
    val_parity = load_parity(VAL_PARITY, val_bits)
    try:
        # One dvclive directory for this stage; dvc.yaml declares its files, so dvclive must not edit dvc.yaml.
        with Live(dir=str(METRICS_DIR / "train"), dvcyaml=False, save_dvc_exp=False) as live:
            trained = train(
                bits, parity, loss_factors, val_bits, val_parity, params, lambda *epoch: log_epoch(live, *epoch)
            )
            log_results(live, trained, params)  # written as Live ends
        layout = Layout(params.units, params.cell)
        save_model(layout.unflatten(trained.members[trained.selected]), layout)
        save_members(trained.members)
    except KeyboardInterrupt:
        raise SystemExit("train: interrupted, no model written; `dvc repro` trains again") from None


if __name__ == "__main__":
    main()
