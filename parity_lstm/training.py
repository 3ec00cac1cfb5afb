"""Training a population and choosing its member: each member fit by `train.engine` (parity_lstm/engines) from the
initial weights of its seed, scored on the validation set after every epoch, the best kept. What the `train` stage
runs, and what the benchmark times.
"""

import signal
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from parity_lstm.engines import engine
from parity_lstm.model import Layout, initial_members
from parity_lstm.params import TrainParams
from parity_lstm.rates import CONVERGED
from parity_lstm.scoring import final_step_right


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
