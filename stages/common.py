"""What the stages share: file names, params loading, array and JSON I/O, the one-hot pair encoding."""

import json
import os
from pathlib import Path
from typing import TypeVar

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveFloat, PositiveInt

PARAMS_FILE = Path("params.yaml")
TRAIN_BITS = Path("data/train_bits.npy")
TEST_BITS = Path("data/test_bits.npy")
TRAIN_PARITY = Path("data/train_parity.npy")
TEST_PARITY = Path("data/test_parity.npy")
MODEL_FILE = Path("models/model.keras")
METRICS_DIR = Path("metrics")


class Params(BaseModel):
    # A misspelt key is an error, not a silently ignored default.
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(Params):
    seq_len: PositiveInt
    count: PositiveInt
    test_count: PositiveInt
    seed: NonNegativeInt


P = TypeVar("P", bound=Params)


class TrainParams(Params):
    units: PositiveInt
    epochs: PositiveInt
    batch_size: PositiveInt
    learning_rate: PositiveFloat
    seed: NonNegativeInt
    # Stop after the first epoch whose training accuracy reaches this; null trains all `epochs`.
    stop_at_accuracy: float | None = Field(gt=0, le=1)


def load_params(section: str, schema: type[P], path: Path = PARAMS_FILE) -> P:
    """The validated `section` block of params.yaml."""
    with open(path) as f:
        return schema.model_validate(yaml.safe_load(f)[section])


def _replace_atomically(path: Path, write) -> None:
    # Write beside the target and rename, so an interrupted stage never leaves a truncated file.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_array(path: Path, array: np.ndarray) -> None:
    _replace_atomically(path, lambda tmp: np.save(tmp, array))


def load_array(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def write_text(path: Path, text: str) -> None:
    _replace_atomically(path, lambda tmp: tmp.write_text(text))


def write_metrics(name: str, metrics: dict) -> None:
    """Write metrics/<name>.json, the stage's figures that `dvc metrics` reads."""
    write_text(METRICS_DIR / f"{name}.json", json.dumps(metrics, indent=2) + "\n")


def save_model(model, path: Path = MODEL_FILE) -> None:
    _replace_atomically(path, model.save)


def one_hot_pairs(bits: np.ndarray) -> np.ndarray:
    """Encode 0/1 values as the reference does: x -> [x, 1 - x], as float32 with a trailing axis of 2."""
    x = bits.astype(np.float32)
    return np.stack([x, 1.0 - x], axis=-1)
