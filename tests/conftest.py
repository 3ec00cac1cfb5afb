import keras
import numpy as np
import pytest
from hypothesis import settings

from stages.train import reference_model

# No time limit per example: hypothesis' default (200 ms) makes a verdict depend on the machine's speed and load.
settings.register_profile("any_machine", deadline=None)
settings.load_profile("any_machine")

SHARP = 20.0  # saturates the gates: sigmoid(20) = 1 - 2e-9


def flip_flop_weights() -> list[np.ndarray]:
    """Weights with which the reference 1-unit LSTM computes running parity exactly, at any length.

    Bit 1 ([1, 0]) closes the forget gate and opens the input gate; the candidate is -sign(h - 0.38), so the
    cell flips between +1 (odd) and -1 (even), starting from 0 (even). Bit 0 ([0, 1]) holds the cell.
    The output reads odd when h = tanh(c) is above 0.38. Keras orders the gates i, f, c, o.
    """
    threshold = 0.38
    kernel = np.array([[SHARP, -SHARP, 0, 0], [-SHARP, SHARP, 0, 0]], np.float32)
    recurrent_kernel = np.array([[0, 0, -SHARP, 0]], np.float32)
    bias = np.array([0, 0, SHARP * threshold, SHARP], np.float32)
    # Slot 0 of the softmax is the probability of parity 1.
    dense_kernel = np.array([[SHARP / 2, -SHARP / 2]], np.float32)
    dense_bias = np.array([-SHARP * threshold / 2, SHARP * threshold / 2], np.float32)
    return [kernel, recurrent_kernel, bias, dense_kernel, dense_bias]


@pytest.fixture(scope="session")
def flip_flop_model() -> keras.Model:
    """The reference architecture with hand-set weights that compute parity exactly: a model that is known right."""
    model = reference_model(units=1)
    model.set_weights(flip_flop_weights())
    return model
