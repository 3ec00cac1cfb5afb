"""The model, defined once: a recurrent cell (LSTM, GRU or simple RNN; `train.cell`) of `units` units, an output every
step, into Dense(2, softmax), on bits as pairs [x, 1 - x].

Everything else asks this module: the layers and the Keras config a model file carries; where each weight sits in a
member's flat row (`Layout`); a member's initial weights for a seed, drawn with numpy from Keras' default
distributions; and the model file, models/model.keras, a Keras 3 archive written and read without Keras.

    weights  [kernel (2, gu), recurrent kernel (u, gu), bias, Dense kernel (u, 2), Dense bias (2,)]
             Keras' `get_weights()` order, g gate rows a unit in Keras' order: LSTM i, f, c, o; GRU z, r, h (its bias
             (2, 3u): the input's, then the recurrent one's); simple RNN one. The kernel's rows are the input pair's
             x and 1 - x; softmax slot 0 is the probability of parity 1
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
# Every member of the population `train` fitted, a flat row each (float32, (members, size)), in member order: what
# `evaluate` scores member by member. The model file is one of them, the selected member.
MEMBERS_FILE = Path("models/members.npy")
# The weights in order, each a part of a member's row: the indices `Layout.offsets` and the kernels use.
KERNEL, RECURRENT, BIAS, DENSE_KERNEL, DENSE_BIAS = range(5)
# The Keras release whose archive layout `save_model` writes; `keras.saving.load_model` of this release opens it
# (tested).
KERAS_VERSION = "3.15.1"


@dataclass(frozen=True)
class Cell:
    """A recurrent cell as Keras defines it, with its default activations and initializers."""

    name: str  # train.cell, and the layer's name in a model file
    keras_layer: str
    gates: int  # gate rows a unit
    bias_rows: int  # GRU (reset_after, Keras' default): the input's bias and the recurrent one's
    settings: tuple[tuple[str, object], ...]  # what a model file's layer must say to be this cell


COMMON = (("return_sequences", True), ("activation", "tanh"), ("use_bias", True))
CELLS = {
    "lstm": Cell("lstm", "LSTM", 4, 1, (*COMMON, ("recurrent_activation", "sigmoid"))),
    "gru": Cell("gru", "GRU", 3, 2, (*COMMON, ("recurrent_activation", "sigmoid"), ("reset_after", True))),
    "simple_rnn": Cell("simple_rnn", "SimpleRNN", 1, 1, COMMON),
}


def offsets(units: int, gates: int, bias_rows: int) -> tuple[int, int, int, int, int, int]:
    """The first index of each weight (KERNEL, RECURRENT, ...) in a member's row, then the row's size: the sizes of
    `Layout.shapes` added up. Plain arithmetic, so that the compiled kernels run this very function."""
    width = gates * units
    recurrent = 2 * width
    bias = recurrent + units * width
    dense_kernel = bias + bias_rows * width
    dense_bias = dense_kernel + units * 2
    return 0, recurrent, bias, dense_kernel, dense_bias, dense_bias + 2


@dataclass(frozen=True)
class Layout:
    """Where each weight of a member of this cell and number of units sits in its flat row."""

    units: int
    cell: str = "lstm"

    @property
    def spec(self) -> Cell:
        return CELLS[self.cell]

    @cached_property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        u, width = self.units, self.spec.gates * self.units
        bias = (width,) if self.spec.bias_rows == 1 else (self.spec.bias_rows, width)
        return (2, width), (u, width), bias, (u, 2), (2,)

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        """The first index of each weight (KERNEL, RECURRENT, ...) in the row, then the row's size."""
        return offsets(self.units, self.spec.gates, self.spec.bias_rows)

    @property
    def size(self) -> int:
        return self.offsets[-1]

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


# Annotations as strings: evaluated, they would import numpy.random into every `predict`, which draws nothing.
def glorot_uniform(rng: "np.random.Generator", shape: tuple[int, int]) -> np.ndarray:
    """Keras' GlorotUniform: uniform in +-sqrt(6 / (fan in + fan out)), a 2-D kernel's fans its two sizes."""
    limit = math.sqrt(6 / sum(shape))
    return rng.uniform(-limit, limit, shape)


def orthogonal(rng: "np.random.Generator", shape: tuple[int, int]) -> np.ndarray:
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


def initial_weights(seed: int, layout: Layout, forget_bias: float = 1.0) -> list[np.ndarray]:
    """A member's weights before training, from Keras' default initializers for its cell: Glorot-uniform kernels, an
    orthogonal recurrent kernel, zero biases but an LSTM's forget gate's, `forget_bias` (Keras' `unit_forget_bias`:
    1). Drawn in float64 from `seed` and rounded to float32 once: the same bytes on every CPU."""
    rng = np.random.default_rng(seed)
    kernel_shape, recurrent_shape, bias_shape, dense_shape, _ = layout.shapes
    kernel, recurrent = glorot_uniform(rng, kernel_shape), orthogonal(rng, recurrent_shape)
    dense_kernel, bias = glorot_uniform(rng, dense_shape), np.zeros(bias_shape)
    if layout.cell == "lstm":
        bias[layout.units : 2 * layout.units] = forget_bias
    return [np.asarray(weight, np.float32) for weight in (kernel, recurrent, bias, dense_kernel, np.zeros(2))]


def initial_members(seed: int, members: int, layout: Layout, forget_bias: float = 1.0) -> np.ndarray:
    """A population's rows before training: member k starts from `initial_weights(seed + k)`."""
    return np.stack([layout.flatten(initial_weights(seed + k, layout, forget_bias)) for k in range(members)])


# ---- the model file -----------------------------------------------------------------------------------------------

DENSE_SETTINGS = {"units": 2, "activation": "softmax", "use_bias": True}


def keras_config(layout: Layout) -> dict:
    """The model as Keras 3 configures it (config.json): what Keras does not find here it takes from its defaults.
    The time axis is open, so a model trained at one length runs at any other."""

    def layer(class_name: str, name: str, settings: dict, inputs: int) -> dict:
        config = {"name": name, **settings}
        build = {"input_shape": [None, None, inputs]}
        return {"module": "keras.layers", "class_name": class_name, "config": config, "build_config": build}

    bits = {"batch_shape": [None, None, 2], "dtype": "float32", "name": "bits"}
    cell = layout.spec
    layers = [
        {"module": "keras.layers", "class_name": "InputLayer", "config": bits},
        layer(cell.keras_layer, cell.name, {"units": layout.units, **dict(cell.settings)}, 2),
        layer("Dense", "dense", DENSE_SETTINGS, layout.units),
    ]
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "reference_model", "layers": layers},
        "build_config": {"input_shape": [None, None, 2]},
    }


def weight_groups(cell: str) -> list[tuple[str, str, tuple[int, ...]]]:
    """Where Keras keeps each layer's weights in model.weights.h5 and the name it records there, in the order Keras
    writes them, with the weights (KERNEL, ...) each holds, in `get_weights()` order."""
    return [
        ("vars", "reference_model", ()),
        (f"layers/{cell}/vars", cell, ()),
        (f"layers/{cell}/cell/vars", f"{cell}_cell", (KERNEL, RECURRENT, BIAS)),
        ("layers/dense/vars", "dense", (DENSE_KERNEL, DENSE_BIAS)),
    ]


def weights_h5(weights: list[np.ndarray], cell: str) -> bytes:
    """model.weights.h5 as Keras writes it (h5py's defaults), byte for byte."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as file:
        for path, name, held in weight_groups(cell):
            group = file.create_group(path)
            group.attrs["name"] = name
            for index, weight in enumerate(held):
                group[str(index)] = weights[weight]
    return buffer.getvalue()


def save_model(weights: list[np.ndarray], layout: Layout, path: Path = MODEL_FILE) -> None:
    """Write a model file that Keras opens (`keras.saving.load_model`), whose bytes depend on the weights alone: no
    date in the archive or its entries (1980-01-01, the ZIP format's epoch), so dvc.lock can pin it."""
    layout.flatten(weights)  # checks the shapes
    entries = {
        "metadata.json": json.dumps({"keras_version": KERAS_VERSION}).encode(),
        "config.json": json.dumps(keras_config(layout)).encode(),
        "model.weights.h5": weights_h5(weights, layout.cell),
    }
    with replaced_atomically(path) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name), data)


def cell_of(layers: list[dict]) -> str | None:
    """The cell of a model file's layers if they are this model's, Input -> cell -> Dense(2, softmax); else None."""
    if len(layers) != 3 or layers[0]["class_name"] != "InputLayer":
        return None
    _, recurrent, dense = layers
    for cell in CELLS.values():
        if recurrent["class_name"] == cell.keras_layer and dict(cell.settings).items() <= recurrent["config"].items():
            break
    else:
        return None
    return cell.name if dense["class_name"] == "Dense" and DENSE_SETTINGS.items() <= dense["config"].items() else None


def load_model(path: Path = MODEL_FILE) -> tuple[list[np.ndarray], Layout]:
    """The float32 weights of a model file of this model (written by `save_model` or by Keras), in `get_weights()`
    order, and its layout; no code from the file is run. Anything else is refused with the command that makes it
    anew."""
    try:
        with zipfile.ZipFile(path) as saved:
            cell = cell_of(json.loads(saved.read("config.json"))["config"]["layers"])
            weights_file = io.BytesIO(saved.read("model.weights.h5"))
        if cell:
            with h5py.File(weights_file, "r") as file:
                held = [(group, index) for group, _, weights in weight_groups(cell) for index in range(len(weights))]
                weights = [np.asarray(file[group][str(index)], np.float32) for group, index in held]
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as error:
        raise bad_input(path, f"cannot be loaded ({type(error).__name__}: {error})") from None
    if not cell or weights[KERNEL].shape[0] != 2:
        raise bad_input(path, "is not the model, an LSTM, GRU or simple RNN -> Dense(2, softmax) on bit pairs")
    layout = Layout(len(weights[RECURRENT]), cell)
    try:
        layout.flatten(weights)
    except ValueError as error:
        raise bad_input(path, f"cannot be loaded ({error})") from None
    return weights, layout


def save_members(members: np.ndarray, path: Path = MEMBERS_FILE) -> None:
    with replaced_atomically(path) as tmp, tmp.open("wb") as file:
        np.save(file, np.asarray(members, np.float32))


def load_members(layout: Layout, path: Path = MEMBERS_FILE) -> np.ndarray:
    """Every member's weights, as `save_members` wrote them for the model file's `layout`; anything else is refused
    with the command that makes it anew."""
    try:
        members = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise bad_input(path, f"cannot be loaded ({type(error).__name__}: {error})") from None
    if members.dtype != np.float32 or members.ndim != 2 or members.shape[1] != layout.size or not len(members):
        found = f"{members.dtype} {members.shape}"
        raise bad_input(path, f"expected float32 (members, {layout.size}) for the model's {layout.cell}, found {found}")
    return members
