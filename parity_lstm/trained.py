"""A trained model, ready to answer: the weights of a model file run by the kernels' forward pass (no TensorFlow,
whose import alone takes seconds), or for a few short sequences by the stepwise one (no numba, whose start costs more
than their arithmetic; the same bits), and the one rule that turns a probability into a predicted parity. What
`evaluate`, `predict` and every score use.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from parity_lstm.model import MODEL_FILE, Layout, load_model
from parity_lstm.numerics import stepwise

# Inputs of at most this many steps, all rows together, run stepwise: in plain Python each step costs what the kernels
# take for thousands, but starting them (importing numba, loading the kernels) costs more than this many steps.
STEPWISE_STEPS = 2_000


def predicted_odd(probability: np.ndarray) -> np.ndarray:
    """The one rule for the predicted parity: odd where the probability of 1 is above 0.5; at exactly 0.5, even."""
    return probability > 0.5


@dataclass(frozen=True)
class TrainedModel:
    """A trained model, run by this forward pass: what `evaluate` scores and `predict` answers with. No TensorFlow,
    whose import alone takes seconds; equal to Keras on TensorFlow to 1e-6 (tested)."""

    weights: np.ndarray  # a flat row
    layout: Layout

    def probability_of_one(self, bits: np.ndarray) -> np.ndarray:
        """The softmax's slot 0, the probability of parity 1, after each step of `bits` (count, steps) of any
        length, PAD in front of short ones: step-major, (steps, count)."""
        if bits.size <= STEPWISE_STEPS:
            return stepwise.probability_of_one(self.weights, bits, self.layout)
        from parity_lstm.numerics.forward import probability_of_one  # numba: imported where the kernels run only

        return probability_of_one(self.weights[None], bits, self.layout)[:, :, 0]

    def states(self, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hidden and cell state after each step of `bits` (count, steps): each (count, steps, units)."""
        from parity_lstm.numerics.forward import states

        return states(self.weights, bits, self.layout)


def load_trained_model(path: Path = MODEL_FILE) -> TrainedModel:
    """The model file's weights, ready to score; no code from the file is run."""
    weights, layout = load_model(path)
    return TrainedModel(layout.flatten(weights), layout)
