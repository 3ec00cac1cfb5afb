"""The model, defined once: LSTM(units, an output every step) -> Dense(2, softmax), on bits as pairs [x, 1 - x].

Everything else asks this module: the layers and the Keras config a model file carries; where each weight sits in a
member's flat row (`Layout`); a member's initial weights for a seed, drawn with numpy from Keras' default
distributions; and the model file, models/model.keras, a Keras 3 archive written and read without Keras.

    weights  [kernel (2, 4u), recurrent kernel (u, 4u), bias (4u,), Dense kernel (u, 2), Dense bias (2,)]
             Keras' `get_weights()` order; the LSTM's gates in Keras' order i, f, c, o; the kernel's rows are the
             input pair's x and 1 - x; softmax slot 0 is the probability of parity 1
    a row    the same weights flat, float32, in that order: one member of a population
"""

import io
import json
import math
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np

from parity_lstm.data.files import bad_input, replaced_atomically

MODEL_FILE = Path("models/model.keras")
GATES = 4  # i, f, c, o
# The weights in order, each a part of a member's row: the indices `Layout.offsets` and the kernels use.
KERNEL, RECURRENT, BIAS, DENSE_KERNEL, DENSE_BIAS = range(5)
# The Keras release whose archive layout `save_model` writes; `keras.saving.load_model` of this release opens it
# (tested).
KERAS_VERSION = "3.15.1"


def offsets(units: int) -> tuple[int, int, int, int, int, int]:
    """The first index of each weight (KERNEL, RECURRENT, ...) in a member's row, then the row's size: the sizes of
    `Layout.shapes` added up. Plain arithmetic, so that the compiled kernels run this very function."""
    gates = GATES * units
    recurrent = 2 * gates
    bias = recurrent + units * gates
    dense_kernel = bias + gates
    dense_bias = dense_kernel + units * 2
    return 0, recurrent, bias, dense_kernel, dense_bias, dense_bias + 2


@dataclass(frozen=True)
class Layout:
    """Where each weight of a member with `units` LSTM units sits in its flat row."""

    units: int

    @cached_property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        u = self.units
        return (2, GATES * u), (u, GATES * u), (GATES * u,), (u, 2), (2,)

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        """The first index of each weight (KERNEL, RECURRENT, ...) in the row, then the row's size."""
        return offsets(self.units)

    @property
    def size(self) -> int:
        return self.offsets[-1]

    @classmethod
    def of(cls, size: int) -> "Layout":
        """The layout of rows of `size` weights: 4u^2 + 14u + 2 = size."""
        layout = cls(round((-14 + (196 - 16 * (2 - size)) ** 0.5) / 8))
        if layout.size != size:
            raise ValueError(f"{size} weights is no model's")
        return layout

    def flatten(self, weights: list[np.ndarray]) -> np.ndarray:
        """The weights, in `get_weights()` order, as one float32 row."""
        for weight, shape in zip(weights, self.shapes, strict=True):
            if np.shape(weight) != shape:
                raise ValueError(f"a weight of shape {np.shape(weight)} where the model has {shape}")
        return np.concatenate([np.asarray(weight, np.float32).ravel() for weight in weights])

    def unflatten(self, row: np.ndarray) -> list[np.ndarray]:
        """A flat row as the weights, in `get_weights()` order."""
        ends = zip(self.offsets[:-1], self.offsets[1:], strict=True)
        return [row[a:b].reshape(shape).copy() for (a, b), shape in zip(ends, self.shapes, strict=True)]


def glorot_uniform(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Keras' GlorotUniform: uniform in +-sqrt(6 / (fan in + fan out)), a 2-D kernel's fans its two sizes."""
    limit = math.sqrt(6 / sum(shape))
    return rng.uniform(-limit, limit, shape)


def orthogonal(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Keras' Orthogonal (gain 1) for rows <= columns: the rows of the Q of a standard normal (columns, rows) matrix,
    its R's diagonal positive. Gram-Schmidt does that QR; each dot product is math.fsum's, rounded once, so the
    bytes do not depend on the CPU, where a QR through LAPACK may differ in its last bits."""
    rows, columns = shape
    if rows > columns:
        raise ValueError(f"no orthogonal rows of {shape}")
    basis = []
    for column in rng.standard_normal((columns, rows)).T:
        for _ in range(2):  # twice: orthogonal to float64 rounding, as a QR is
            for q in basis:
                column = column - math.fsum(q * column) * q
        basis.append(column / math.sqrt(math.fsum(column * column)))
    return np.array(basis)


def initial_weights(seed: int, units: int, forget_bias: float) -> list[np.ndarray]:
    """A member's weights before training, from Keras' default initializers for these layers: Glorot-uniform kernels,
    an orthogonal recurrent kernel, zero biases but the forget gate's, `forget_bias` (Keras' `unit_forget_bias`: 1).
    Drawn in float64 from `seed` and rounded to float32 once: the same bytes on every CPU."""
    rng = np.random.default_rng(seed)
    kernel = glorot_uniform(rng, (2, GATES * units))
    recurrent = orthogonal(rng, (units, GATES * units))
    dense_kernel = glorot_uniform(rng, (units, 2))
    bias = np.zeros(GATES * units)
    bias[units : 2 * units] = forget_bias
    return [np.asarray(weight, np.float32) for weight in (kernel, recurrent, bias, dense_kernel, np.zeros(2))]


def initial_members(seed: int, members: int, units: int, forget_bias: float) -> np.ndarray:
    """A population's rows before training: member k starts from `initial_weights(seed + k)`."""
    layout = Layout(units)
    return np.stack([layout.flatten(initial_weights(seed + k, units, forget_bias)) for k in range(members)])


# ---- the model file -----------------------------------------------------------------------------------------------

# The layers a model file must have, each with the settings that make it this model: anything else is refused.
LAYERS = [
    ("InputLayer", {}),
    ("LSTM", {"return_sequences": True, "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True}),
    ("Dense", {"units": 2, "activation": "softmax", "use_bias": True}),
]


def keras_config(units: int) -> dict:
    """The model as Keras 3 configures it (config.json): what Keras does not find here it takes from its defaults.
    The time axis is open, so a model trained at one length runs at any other."""
    input_layer, (lstm, lstm_settings), (dense, dense_settings) = LAYERS

    def layer(class_name: str, name: str, settings: dict, inputs: int) -> dict:
        config = {"name": name, **settings}
        build = {"input_shape": [None, None, inputs]}
        return {"module": "keras.layers", "class_name": class_name, "config": config, "build_config": build}

    bits = {"batch_shape": [None, None, 2], "dtype": "float32", "name": "bits"}
    layers = [
        {"module": "keras.layers", "class_name": input_layer[0], "config": bits},
        layer(lstm, "lstm", {"units": units, **lstm_settings}, 2),
        layer(dense, "dense", dense_settings, units),
    ]
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "reference_model", "layers": layers},
        "build_config": {"input_shape": [None, None, 2]},
    }


# Where Keras keeps each layer's weights in model.weights.h5, and the name it records there: in the order Keras writes
# them, with the weights (KERNEL, ...) each holds.
WEIGHT_GROUPS = [
    ("vars", "reference_model", ()),
    ("layers/lstm/vars", "lstm", ()),
    ("layers/lstm/cell/vars", "lstm_cell", (KERNEL, RECURRENT, BIAS)),
    ("layers/dense/vars", "dense", (DENSE_KERNEL, DENSE_BIAS)),
]


# Each weight's group and name in model.weights.h5, in `get_weights()` order (WEIGHT_GROUPS holds them in it).
WEIGHT_PLACES = [(group, str(index)) for group, _, held in WEIGHT_GROUPS for index, _ in enumerate(held)]


def weights_h5(weights: list[np.ndarray]) -> bytes:
    """model.weights.h5 as Keras writes it (h5py's defaults), byte for byte."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as file:
        for path, name, held in WEIGHT_GROUPS:
            group = file.create_group(path)
            group.attrs["name"] = name
            for index, weight in enumerate(held):
                group[str(index)] = weights[weight]
    return buffer.getvalue()


def save_model(weights: list[np.ndarray], path: Path = MODEL_FILE) -> None:
    """Write a model file that Keras opens (`keras.saving.load_model`), whose bytes depend on the weights alone: no
    date in the archive or its entries (1980-01-01, the ZIP format's epoch), so dvc.lock can pin it."""
    units = len(weights[1])
    Layout(units).flatten(weights)  # checks the shapes
    entries = {
        "metadata.json": json.dumps({"keras_version": KERAS_VERSION}).encode(),
        "config.json": json.dumps(keras_config(units)).encode(),
        "model.weights.h5": weights_h5(weights),
    }
    with replaced_atomically(path) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name), data)


def load_model(path: Path = MODEL_FILE) -> list[np.ndarray]:
    """The float32 weights of a model file of this model (written by `save_model` or by Keras), in `get_weights()`
    order; no code from the file is run. Anything else is refused with the command that makes it anew."""
    try:
        with zipfile.ZipFile(path) as saved:
            layers = json.loads(saved.read("config.json"))["config"]["layers"]
            weights_file = io.BytesIO(saved.read("model.weights.h5"))
        ours = len(layers) == len(LAYERS) and all(
            layer["class_name"] == class_name and settings.items() <= layer["config"].items()
            for layer, (class_name, settings) in zip(layers, LAYERS, strict=True)
        )
        if ours:
            with h5py.File(weights_file, "r") as file:
                places = {
                    weight: (path, str(index)) for path, _, held in WEIGHT_GROUPS for index, weight in enumerate(held)
                }
                weights = [
                    np.asarray(file[path][index], np.float32) for path, index in (places[w] for w in sorted(places))
                ]
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as error:
        raise bad_input(path, f"cannot be loaded ({type(error).__name__}: {error})") from None
    if not ours or weights[KERNEL].shape[0] != 2:
        raise bad_input(path, "is not the model LSTM(units) -> Dense(2, softmax) on bit pairs")
    try:
        Layout(len(weights[RECURRENT])).flatten(weights)
    except ValueError as error:
        raise bad_input(path, f"cannot be loaded ({error})") from None
    return weights
