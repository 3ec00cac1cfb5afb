"""Stages refuse input files they cannot use, naming the file and the command that makes it anew."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from parity_lstm.data import files
from parity_lstm.data.encoding import PAD, running_parity
from parity_lstm.data.files import load_bits, load_loss_factors, load_parity, row_writer
from parity_lstm.model import Layout, save_model
from parity_lstm.trained import load_trained_model
from tests.conftest import flip_flop_weights

BITS = np.array([[PAD, 1, 0, 1], [0, 1, 1, 0]], np.uint8)


def saved(tmp_path: Path, name: str, array: np.ndarray) -> Path:
    path = tmp_path / name
    np.save(path, array)
    return path


def test_good_inputs_load(tmp_path):
    bits = load_bits(saved(tmp_path, "train_bits.npy", BITS))
    np.testing.assert_array_equal(
        load_parity(saved(tmp_path, "train_parity.npy", running_parity(bits)), bits), running_parity(bits)
    )
    assert (
        load_loss_factors(saved(tmp_path, "train_loss_factors.npy", (bits != PAD).astype(np.float32)), bits).sum() == 7
    )


@pytest.mark.parametrize(
    "array, problem",
    [
        (BITS.astype(np.int64), "expected a non-empty 2-D uint8 array, found int64 (2, 4)"),
        (BITS[0], "expected a non-empty 2-D uint8 array, found uint8 (4,)"),
        (np.array([[0, 3, 1]], np.uint8), "values other than 0, 1 and 2 (padding)"),
        (np.array([[0, PAD, 1]], np.uint8), "padding (2) is allowed only in front of a sequence"),
        (np.array([[1, 0, PAD]], np.uint8), "padding (2) is allowed only in front of a sequence"),
    ],
)
def test_bad_bits_are_refused(tmp_path, array, problem):
    path = saved(tmp_path, "train_bits.npy", array)
    with pytest.raises(SystemExit) as refused:
        load_bits(path)
    assert str(refused.value.code) == f"{path}: {problem}; make it again with `dvc repro -f generate`"


def test_truncated_or_pickled_files_are_refused(tmp_path):
    path = saved(tmp_path, "test_bits.npy", np.zeros((100, 50), np.uint8))
    path.write_bytes(path.read_bytes()[:300])  # an interrupted copy
    with pytest.raises(SystemExit, match=r"test_bits.npy: cannot be read .*`dvc repro -f generate`"):
        load_bits(path)
    pickled = tmp_path / "train_parity.npy"
    np.save(pickled, np.array([{"not": "data"}], dtype=object), allow_pickle=True)
    with pytest.raises(SystemExit, match=r"cannot be read .*`dvc repro -f targets`"):
        load_parity(pickled, load_bits(saved(tmp_path, "test_bits.npy", BITS)))
    with pytest.raises(SystemExit, match=r"model.keras: cannot be loaded \(FileNotFoundError.*`dvc repro -f train`"):
        load_trained_model(tmp_path / "model.keras")


def test_a_truncated_model_file_is_refused(tmp_path):
    path = tmp_path / "model.keras"
    save_model(flip_flop_weights(), Layout(1), path)
    load_trained_model(path)  # whole, it loads
    path.write_bytes(path.read_bytes()[:-100])  # an interrupted copy
    with pytest.raises(SystemExit, match=r"model.keras: cannot be loaded \(BadZipFile.*`dvc repro -f train`"):
        load_trained_model(path)


def test_labels_must_belong_to_the_bits(tmp_path):
    bits = load_bits(saved(tmp_path, "train_bits.npy", BITS))
    wrong = running_parity(BITS)
    wrong[1, 2] ^= 1
    with pytest.raises(SystemExit, match=r"is not the running parity of the bits .*`dvc repro -f targets`"):
        load_parity(saved(tmp_path, "train_parity.npy", wrong), bits)
    with pytest.raises(SystemExit, match="is not the running parity"):
        load_parity(saved(tmp_path, "train_parity.npy", running_parity(BITS)[:, 1:]), bits)
    on_padding = np.ones(BITS.shape, np.float32)
    with pytest.raises(SystemExit, match="0 on padding"):
        load_loss_factors(saved(tmp_path, "train_loss_factors.npy", on_padding), bits)
    with pytest.raises(SystemExit, match="expected float32"):
        load_loss_factors(saved(tmp_path, "train_loss_factors.npy", on_padding.astype(np.float64)), bits)


def test_a_stage_given_a_bad_file_exits_with_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data/train_bits.npy", np.array([[0, 1, 3]], np.uint8))
    np.save(tmp_path / "data/test_bits.npy", np.array([[0, 1, 1]], np.uint8))
    (tmp_path / "params.yaml").write_text("targets:\n  mode: running\n  weighting: uniform\n")
    result = subprocess.run(
        [sys.executable, "-m", "stages.targets"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "data/train_bits.npy: values other than 0, 1 and 2 (padding); make it again with `dvc repro -f generate`"
    ]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["test_bits.npy", "train_bits.npy"]
    assert not (tmp_path / "metrics").exists()


def test_every_block_is_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "BLOCK_STEPS", 8)  # two rows a block
    bits = np.zeros((9, 4), np.uint8)
    bits[8, 1] = 3  # in the last block
    with pytest.raises(SystemExit, match="values other than 0, 1 and 2"):
        load_bits(saved(tmp_path, "train_bits.npy", bits))
    good = load_bits(saved(tmp_path, "test_bits.npy", bits % 3))
    wrong = running_parity(good)
    wrong[7, 3] ^= 1
    with pytest.raises(SystemExit, match="is not the running parity"):
        load_parity(saved(tmp_path, "test_parity.npy", wrong), good)


def test_a_file_written_in_blocks_appears_only_when_whole(tmp_path):
    path = saved(tmp_path, "train_bits.npy", BITS)
    with pytest.raises(KeyboardInterrupt), row_writer(path, (2, 4), np.uint8) as write:
        write(BITS[:1])
        raise KeyboardInterrupt  # before the last row
    with pytest.raises(ValueError, match="1 rows written of 2"), row_writer(path, (2, 4), np.uint8) as write:
        write(BITS[:1])  # and then nothing more
    with pytest.raises(ValueError, match="a block of int64"), row_writer(path, (2, 4), np.uint8) as write:
        write(BITS.astype(np.int64))
    np.testing.assert_array_equal(load_bits(path), BITS)
    assert [child.name for child in tmp_path.iterdir()] == ["train_bits.npy"]
    with row_writer(path, (2, 4), np.uint8) as write:
        write(BITS[:1])
        write(BITS[1:])
    assert path.read_bytes() == saved(tmp_path, "saved.npy", BITS).read_bytes()


def test_fortran_order_and_wrong_dtypes_are_refused(tmp_path):
    with pytest.raises(SystemExit, match="Fortran"):
        load_bits(saved(tmp_path, "train_bits.npy", np.asfortranarray(np.zeros((3, 4), np.uint8))))
    bits = load_bits(saved(tmp_path, "test_bits.npy", BITS))
    with pytest.raises(SystemExit, match=r"is not the running parity of the bits .*int64"):
        load_parity(saved(tmp_path, "test_parity.npy", running_parity(BITS).astype(np.int64)), bits)
