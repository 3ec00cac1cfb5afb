"""The trained model's file, models/model.keras: an ordinary Keras file of the reference architecture, saved with
bytes that depend on the weights alone and read back as weights without running any of its code.
"""

import io
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np

from stages.files import bad_input, replaced_atomically

MODEL_FILE = Path("models/model.keras")
# Input -> LSTM(units, per-step outputs) -> Dense(2, softmax): the layers a model file must have, in order.
REFERENCE_LAYERS = [
    ("InputLayer", {}),
    ("LSTM", {"return_sequences": True, "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True}),
    ("Dense", {"units": 2, "activation": "softmax", "use_bias": True}),
]


def save_model(model, path: Path = MODEL_FILE) -> None:
    """Save a Keras model as a .keras file whose bytes depend on the model alone, so dvc.lock can pin it."""
    with replaced_atomically(path) as tmp:
        model.save(tmp)
        # Keras stamps the save time into the archive (metadata.json and an entry's date), and Python object ids
        # into config.json (`shared_object_id`, which only link shared objects: renumbered in order here).
        with zipfile.ZipFile(tmp) as saved:
            entries = {name: saved.read(name) for name in saved.namelist()}
        metadata = json.loads(entries["metadata.json"])
        metadata.pop("date_saved", None)
        entries["metadata.json"] = json.dumps(metadata).encode()
        entries["config.json"] = json.dumps(renumbered(json.loads(entries["config.json"]), {})).encode()
        with zipfile.ZipFile(tmp, "w") as archive:
            for name, data in entries.items():
                archive.writestr(zipfile.ZipInfo(name), data)  # dated 1980-01-01, the ZIP format's epoch


def renumbered(config, ids: dict[int, int]):
    """`config` with each distinct `shared_object_id` replaced by its order of first appearance (0, 1, ...)."""
    if isinstance(config, dict):
        return {
            key: ids.setdefault(value, len(ids)) if key == "shared_object_id" else renumbered(value, ids)
            for key, value in config.items()
        }
    if isinstance(config, list):
        return [renumbered(value, ids) for value in config]
    return config


def load_reference_weights(path: Path = MODEL_FILE) -> list[np.ndarray]:
    """The float32 weights of a .keras file of the reference architecture on bit pairs, in the order of Keras'
    `get_weights()`: LSTM kernel, recurrent kernel, bias, Dense kernel, bias. Anything else is refused."""
    try:
        with zipfile.ZipFile(path) as saved:
            layers = json.loads(saved.read("config.json"))["config"]["layers"]
            weights_file = io.BytesIO(saved.read("model.weights.h5"))
        reference = len(layers) == len(REFERENCE_LAYERS)
        for layer, (class_name, config) in zip(layers, REFERENCE_LAYERS, strict=False):
            reference &= layer["class_name"] == class_name and config.items() <= layer["config"].items()
        if reference:
            with h5py.File(weights_file, "r") as weights:
                lstm, dense = weights["layers/lstm/cell/vars"], weights["layers/dense/vars"]
                arrays = [lstm["0"], lstm["1"], lstm["2"], dense["0"], dense["1"]]
                loaded = [np.asarray(array, np.float32) for array in arrays]
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as error:
        raise bad_input(path, f"cannot be loaded ({type(error).__name__}: {error})") from None
    if not reference or loaded[0].shape[0] != 2:
        raise bad_input(path, "is not the reference architecture LSTM(units) -> Dense(2, softmax) on bit pairs")
    return loaded
