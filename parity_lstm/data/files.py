"""The files the stages read and write: the data arrays, read and written a block of rows at a time so memory stays
bounded at any size, checked as they load; the metrics JSON; every file replaced atomically.
"""

import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from parity_lstm.data.encoding import PAD, running_parity

TRAIN_BITS = Path("data/train_bits.npy")
VAL_BITS = Path("data/val_bits.npy")
TEST_BITS = Path("data/test_bits.npy")
TRAIN_PARITY = Path("data/train_parity.npy")
TRAIN_LOSS_FACTORS = Path("data/train_loss_factors.npy")
VAL_PARITY = Path("data/val_parity.npy")
TEST_PARITY = Path("data/test_parity.npy")
METRICS_DIR = Path("metrics")
# Steps per block of rows when a stage walks through an array: memory stays bounded at any size.
BLOCK_STEPS = 1 << 22


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
    from tqdm import tqdm  # here, not above: `predict`, which reads a model file and never a data file, starts lighter

    with tqdm(total=total_steps, desc=description, unit="bit", unit_scale=True, delay=1, disable=None) as bar:
        for block in blocks:
            yield block
            bar.update(block.size)


def bad_input(path: Path, problem: str) -> SystemExit:
    """The error for an input file a stage cannot use, with the command that makes it anew."""
    stage = {"bits": "generate", "parity": "targets", "factors": "targets", "model": "train", "members": "train"}.get(
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


def load_loss_factors(path: Path, bits: np.memmap) -> np.memmap:
    """Each step's factor in the training loss, as `targets` writes them: float32, >= 0, finite, 0 on padding."""
    factors = open_array(path)
    if factors.shape != bits.shape or factors.dtype != np.float32:
        raise bad_input(path, f"expected float32 {bits.shape} like the bits, found {factors.dtype} {factors.shape}")
    for block, bits_block in zip(read_blocks(factors), read_blocks(bits), strict=True):
        if not (np.isfinite(block).all() and (block >= 0).all() and (block[bits_block == PAD] == 0).all()):
            raise bad_input(path, "loss factors must be finite, >= 0, and 0 on padding")
    return factors


def write_text(path: Path, text: str) -> None:
    with replaced_atomically(path) as tmp:
        tmp.write_text(text)


def write_metrics(name: str, metrics: dict) -> None:
    """Write metrics/<name>.json, the stage's figures that `dvc metrics` reads."""
    write_text(METRICS_DIR / f"{name}.json", json.dumps(metrics, indent=2) + "\n")
