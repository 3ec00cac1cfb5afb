"""What the stages share: file names, params, array and JSON I/O, sampling, parity and the pair encoding.

Arrays of any size go through memory a block of rows at a time (`read_blocks`, `row_writer`).
"""

import difflib
import json
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)
from tqdm import tqdm

PARAMS_FILE = Path("params.yaml")
TRAIN_BITS = Path("data/train_bits.npy")
VAL_BITS = Path("data/val_bits.npy")
TEST_BITS = Path("data/test_bits.npy")
TRAIN_PARITY = Path("data/train_parity.npy")
TRAIN_WEIGHTS = Path("data/train_weights.npy")
VAL_PARITY = Path("data/val_parity.npy")
TEST_PARITY = Path("data/test_parity.npy")
MODEL_FILE = Path("models/model.keras")
METRICS_DIR = Path("metrics")
# Validation final-step accuracy from which a model counts as converged (seed sweeps, populations).
CONVERGED = 0.99
# Marks the steps in front of a sequence shorter than seq_len: neither bit, encoded [0, 0].
PAD = 2
# Steps per block of rows when a stage walks through an array: memory stays bounded (under 100 MiB) at any size.
BLOCK_STEPS = 1 << 22


class Params(BaseModel):
    # Strict: `true` or "50" is not a count; nor is .inf a rate. A misspelt (extra) key is an error, not ignored.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


P = TypeVar("P", bound=Params)


class DataParams(Params):
    seq_len: PositiveInt
    # Shortest sequence: below seq_len, lengths are uniform in [min_len, seq_len], padded in front with PAD.
    # null: every sequence is seq_len long.
    min_len: PositiveInt | None
    count: PositiveInt
    # Validation sequences: what `train` monitors, stops on and selects with. The test set is for `evaluate` alone.
    val_count: PositiveInt
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
    # Members trained together: member k starts from the initial weights of `seed + k`; the best one is kept.
    population: PositiveInt
    # Stop after the first epoch in which a member's validation final-step accuracy reaches this; null: all `epochs`.
    stop_at_accuracy: float | None = Field(gt=0, le=1)


def load_params(section: str, schema: type[P], path: Path = PARAMS_FILE) -> P:
    """The validated `section` block of params.yaml; exits with one line per problem before any work is done."""
    return validated_block(read_params(path), section, schema, path)


def read_params(path: Path = PARAMS_FILE):
    """params.yaml as parsed (a mapping of blocks, if it is well-formed); exits in one line if it cannot be read."""
    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise SystemExit(f"{path}: cannot read it: {error}") from None


def validated_block(blocks, section: str, schema: type[P], path: Path) -> P:
    """The `section` block of parsed params.yaml `blocks`, validated; exits with one line per problem."""
    try:
        return schema.model_validate(blocks[section])
    except (KeyError, TypeError):
        raise SystemExit(f"{path}: no `{section}:` block") from None
    except ValidationError as error:
        raise SystemExit("\n".join(describe(problem, section, schema, path) for problem in error.errors())) from None


def describe(problem: dict, section: str, schema: type[Params], path: Path) -> str:
    """One line for one pydantic error: the key, the value, what is allowed."""
    key = ".".join([section, *map(str, problem["loc"])])
    if problem["type"] == "extra_forbidden":
        hint = did_you_mean(str(problem["loc"][-1]), schema.model_fields, f"{section}.")
        return f"{path}: unknown key {key}{hint}; allowed: {', '.join(schema.model_fields)}"
    if problem["type"] == "missing":
        return f"{path}: {key} is missing"
    if not problem["loc"]:  # a check across keys, whose message names them
        return f"{path}: {section}: {problem['msg']}"
    return f"{path}: {key} = {problem['input']!r}: {problem['msg']}"


def did_you_mean(name: str, allowed: Iterable[str], prefix: str = "") -> str:
    """The hint for a misspelt name: ' (did you mean <prefix><closest>?)', or '' if nothing allowed is close."""
    close = difflib.get_close_matches(name, list(allowed), n=1)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


SCHEMAS: dict[str, type[Params]] = {
    "data": DataParams,
    "targets": TargetsParams,
    "train": TrainParams,
    "evaluate": EvaluateParams,
}


def check_params(path: Path = PARAMS_FILE) -> None:
    """Check every block of params.yaml against its stage's schema, as each stage will: exits on the first problem."""
    blocks = read_params(path)
    # A file that is no mapping has no blocks: the first stage's check below names the block it lacks.
    for unknown in (blocks.keys() if isinstance(blocks, dict) else set()) - SCHEMAS.keys():
        hint = did_you_mean(str(unknown), SCHEMAS)
        raise SystemExit(f"{path}: unknown block `{unknown}:`{hint}; allowed: {', '.join(SCHEMAS)}")
    for section, schema in SCHEMAS.items():
        validated_block(blocks, section, schema, path)


@contextmanager
def replaced_atomically(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to, renamed to `path` when the with-block ends without error."""
    # So an interrupted stage never leaves a truncated file.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def row_blocks(rows: int, row_len: int) -> Iterator[slice]:
    """Consecutive ranges of whole rows, about BLOCK_STEPS steps each."""
    step = max(1, BLOCK_STEPS // row_len)
    for start in range(0, rows, step):
        yield slice(start, min(start + step, rows))


@contextmanager
def row_writer(path: Path, shape: tuple[int, int], dtype: type) -> Iterator[Callable[[np.ndarray], None]]:
    """`write(block)` appends a block of rows; the file, the one `np.save` would write, appears as the block ends
    if exactly `shape` was written."""
    dtype = np.dtype(dtype)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    rows_written = 0

    def write(block: np.ndarray) -> None:
        nonlocal rows_written
        if block.dtype != dtype or block.shape[1:] != shape[1:]:
            raise ValueError(f"{path}: a block of {block.dtype} {block.shape} in a file of {dtype} {shape}")
        file.write(np.ascontiguousarray(block).data)
        rows_written += len(block)

    with replaced_atomically(path) as tmp, tmp.open("wb") as file:
        np.lib.format.write_array_header_1_0(file, header)
        yield write
        if rows_written != shape[0]:
            raise ValueError(f"{path}: {rows_written} rows written of {shape[0]}; the previous file is kept")


def read_blocks(array: np.memmap) -> Iterator[np.ndarray]:
    """The rows of a memory-mapped .npy array, a block at a time, read from its file.

    Plain reads: pages read through the mapping would count as the stage's memory until the kernel takes them
    back, so a pass over the whole file would look like a whole copy of it.
    """
    with open(array.filename, "rb") as file:
        file.seek(array.offset)
        for rows in row_blocks(*array.shape):
            count = (rows.stop - rows.start) * array.shape[1]
            yield np.fromfile(file, array.dtype, count).reshape(-1, array.shape[1])


def with_progress(blocks: Iterable[np.ndarray], total_steps: int, description: str) -> Iterator[np.ndarray]:
    """Pass the blocks through, with a progress bar on a terminal for runs that take more than a second."""
    with tqdm(total=total_steps, desc=description, unit="bit", unit_scale=True, delay=1, disable=None) as bar:
        for block in blocks:
            yield block
            bar.update(block.size)


def bad_input(path: Path, problem: str) -> SystemExit:
    """The error for an input file a stage cannot use, with the command that makes it anew."""
    stage = {"bits": "generate", "parity": "targets", "weights": "targets", "model": "train"}.get(
        path.stem.split("_")[-1]
    )
    again = f"`dvc repro -f {stage}`" if stage else "`dvc repro -f`"
    return SystemExit(f"{path}: {problem}; make it again with {again}")


def open_array(path: Path) -> np.memmap:
    """A .npy file mapped, not read: rows are read when they are used."""
    # No pickle: a .npy file is data, never code to run (object arrays cannot be mapped either).
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise bad_input(path, f"cannot be read ({error})") from None
    if not array.flags.c_contiguous:  # the stages read rows; Fortran order would scramble them
        raise bad_input(path, "is stored in Fortran (column) order")
    return array


def load_bits(path: Path) -> np.memmap:
    """Bits as `generate` writes them: 2-D uint8 of 0 and 1, with PAD only in front of a sequence."""
    bits = open_array(path)
    if bits.ndim != 2 or bits.dtype != np.uint8 or 0 in bits.shape:
        raise bad_input(path, f"expected a non-empty 2-D uint8 array, found {bits.dtype} {bits.shape}")
    for block in read_blocks(bits):
        if block.max() > PAD:  # uint8: 0, 1 and PAD are all the values up to PAD
            raise bad_input(path, f"values other than 0, 1 and {PAD} (padding)")
        real = block != PAD
        if not (real[:, -1].all() and (real[:, 1:] >= real[:, :-1]).all()):
            raise bad_input(path, f"padding ({PAD}) is allowed only in front of a sequence")
    return bits


def load_parity(path: Path, bits: np.memmap) -> np.memmap:
    """Running parity as `targets` writes it, checked against the bits it was made from."""
    parity = open_array(path)
    if (
        parity.shape != bits.shape
        or parity.dtype != np.uint8
        or not all(
            np.array_equal(labels, running_parity(block))
            for labels, block in zip(read_blocks(parity), read_blocks(bits), strict=True)
        )
    ):
        raise bad_input(path, f"is not the running parity of the bits ({parity.dtype} {parity.shape})")
    return parity


def load_weights(path: Path, bits: np.memmap) -> np.memmap:
    """Loss weights as `targets` writes them: float32, >= 0, finite, 0 on padding."""
    weights = open_array(path)
    if weights.shape != bits.shape or weights.dtype != np.float32:
        raise bad_input(path, f"expected float32 {bits.shape} like the bits, found {weights.dtype} {weights.shape}")
    for block, bits_block in zip(read_blocks(weights), read_blocks(bits), strict=True):
        if not (np.isfinite(block).all() and (block >= 0).all() and (block[bits_block == PAD] == 0).all()):
            raise bad_input(path, "weights must be finite, >= 0, and 0 on padding")
    return weights


def write_text(path: Path, text: str) -> None:
    with replaced_atomically(path) as tmp:
        tmp.write_text(text)


def write_metrics(name: str, metrics: dict) -> None:
    """Write metrics/<name>.json, the stage's figures that `dvc metrics` reads."""
    write_text(METRICS_DIR / f"{name}.json", json.dumps(metrics, indent=2) + "\n")


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


if __name__ == "__main__":
    # `python -m stages.common`: check params.yaml before a run starts (the Airflow DAGs do, after applying overrides).
    check_params()
    print(f"{PARAMS_FILE}: every block is valid")
