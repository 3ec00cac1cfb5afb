"""The model as a Keras model, built from the config a model file carries (parity_lstm.model): the oracle that
the fused numerics are tested against."""

import keras
import numpy as np

from parity_lstm.model import Layout, initial_weights, keras_config


def keras_model(weights: list[np.ndarray], layout: Layout) -> keras.Model:
    """The model with these weights (`get_weights()` order), as `keras.saving.load_model` builds it from a file."""
    model = keras.saving.deserialize_keras_object(keras_config(layout))
    model.set_weights(weights)
    return model


def reference_model(layout: Layout, seed: int = 0, forget_bias: float = 1.0) -> keras.Model:
    """The model with the initial weights of `seed`."""
    return keras_model(initial_weights(seed, layout, forget_bias), layout)
