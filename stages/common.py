"""What the stages share: file names, params, array and JSON I/O, sampling, parity and the pair encoding."""

import json
import os
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveFloat, PositiveInt, model_validator

PARAMS_FILE = Path("params.yaml")
TRAIN_BITS = Path("data/train_bits.npy")
TEST_BITS = Path("data/test_bits.npy")
TRAIN_PARITY = Path("data/train_parity.npy")
TRAIN_WEIGHTS = Path("data/train_weights.npy")
TEST_PARITY = Path("data/test_parity.npy")
MODEL_FILE = Path("models/model.keras")
METRICS_DIR = Path("metrics")
# Held-out final-step accuracy from which a run counts as converged (seed sweeps).
CONVERGED = 0.99
# Marks the steps in front of a sequence shorter than seq_len: neither bit, encoded [0, 0].
PAD = 2


class Params(BaseModel):
    # A misspelt key is an error, not a silently ignored default.
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(Params):
    seq_len: PositiveInt
    # Shortest sequence: below seq_len, lengths are uniform in [min_len, seq_len], padded in front with PAD.
    # null: every sequence is seq_len long.
    min_len: PositiveInt | None
    count: PositiveInt
    test_count: PositiveInt
    seed: NonNegativeInt

    @model_validator(mode="after")
    def _min_len_at_most_seq_len(self):
        if self.min_len is not None and self.min_len > self.seq_len:
            raise ValueError(f"data.min_len ({self.min_len}) must be at most data.seq_len ({self.seq_len})")
        return self


class TargetsParams(Params):
    # running: the parity so far is the label at every step; final: only the last step is supervised.
    mode: Literal["running", "final"]
    # uniform: every supervised step weighs the same; inverse_position: the t-th real step weighs 1/t
    # (rescaled to a mean of 1), so the short prefixes, where parity is easy, lead.
    weighting: Literal["uniform", "inverse_position"]


P = TypeVar("P", bound=Params)


class EvaluateParams(Params):
    lengths: list[PositiveInt] = Field(min_length=1)
    sequences_per_length: PositiveInt
    seed: NonNegativeInt


class TrainParams(Params):
    units: PositiveInt
    epochs: PositiveInt
    batch_size: PositiveInt
    learning_rate: PositiveFloat
    # Initial bias of the LSTM's forget gate (Keras' default: 1). Higher: the cell holds its state from the start.
    forget_bias: float
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
    """Encode bits as the reference does, x -> [x, 1 - x], and PAD as [0, 0]: float32 with a trailing axis of 2."""
    return np.stack([bits == 1, bits == 0], axis=-1).astype(np.float32)


def random_bits(rng: np.random.Generator, count: int, seq_len: int) -> np.ndarray:
    """`count` sequences of `seq_len` uniform random bits, shape (count, seq_len), dtype uint8."""
    return rng.integers(0, 2, size=(count, seq_len), dtype=np.uint8)


def running_parity(bits: np.ndarray) -> np.ndarray:
    """Parity of bits[..., :t+1] for every t (PAD counts as 0), same shape and dtype uint8 as the bits."""
    # XOR-accumulate keeps uint8 throughout; cumsum would widen to int64 (8x the memory).
    return np.bitwise_xor.accumulate(bits == 1, axis=-1, dtype=np.uint8)
