import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from devkit.scratch_repo import REPO
from parity_lstm.model import Layout, save_model
from tests.conftest import flip_flop_weights
from tools.predict import MAX_BITS, parse_bits


@pytest.mark.parametrize("text, bits", [("0", [0]), ("1", [1]), ("1011001", [1, 0, 1, 1, 0, 0, 1])])
def test_parse_bits(text, bits):
    parsed = parse_bits(text)
    assert parsed.dtype == np.uint8
    np.testing.assert_array_equal(parsed, bits)


@pytest.mark.parametrize("text", ["", "10a1", "1 0", "2", "\uff11"])
def test_parse_bits_rejects_what_is_not_a_bit_string(text):
    with pytest.raises(ValueError):
        parse_bits(text)


def test_parse_bits_rejects_more_than_the_limit():
    assert len(parse_bits("1" * MAX_BITS)) == MAX_BITS
    with pytest.raises(ValueError, match="limit"):
        parse_bits("1" * (MAX_BITS + 1))


def predict(folder: Path, *arguments: str, lines: str = "") -> subprocess.CompletedProcess:
    """`python -m tools.predict` in `folder`, as a user runs it there."""
    return subprocess.run(
        [sys.executable, "-m", "tools.predict", *arguments],
        input=lines,
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )


@pytest.fixture
def flip_flop_folder(tmp_path: Path) -> Path:
    """A folder whose models/model.keras is the flip-flop model, exactly right at any length."""
    save_model(flip_flop_weights(), Layout(1), tmp_path / "models/model.keras")
    return tmp_path


def test_predict_prints_parity_for_each_line_and_reports_bad_ones(flip_flop_folder: Path):
    long = "1" * 2001  # far longer than any training: 2001 ones, odd
    result = predict(flip_flop_folder, lines=f"1011001\n0110\n\n10a\n1\n{long}\n")
    assert result.returncode == 2
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [(bits, predicted, true) for bits, predicted, _, true in rows] == [
        ("1011001", "0", "0"),
        ("0110", "0", "0"),
        ("1", "1", "1"),
        (long, "1", "1"),
    ]
    assert all(float(confidence) > 0.99 for _, _, confidence, _ in rows)
    assert result.stderr.splitlines() == [
        "predict: sequence 3: empty sequence",
        "predict: sequence 4: '10a' is not a string of 0 and 1",
    ]


def test_predict_takes_sequences_as_arguments_and_ignores_stdin_then(flip_flop_folder: Path):
    result = predict(flip_flop_folder, "111", "0", "10", lines="1\n")
    assert (result.returncode, result.stderr) == (0, "")
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [(bits, predicted, true) for bits, predicted, _, true in rows] == [
        ("111", "1", "1"),
        ("0", "0", "0"),
        ("10", "1", "1"),
    ]


def test_an_over_long_line_is_one_error_line_and_nothing_on_stdout(flip_flop_folder: Path):
    result = predict(flip_flop_folder, lines="1" * (MAX_BITS + 1) + "\n")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"predict: sequence 1: {MAX_BITS + 1} bits, more than the limit of {MAX_BITS}"
    ]


@pytest.mark.parametrize("model", ["missing", "corrupt", "truncated"])
def test_without_a_usable_model_predict_says_so_in_one_line_and_prints_nothing(flip_flop_folder: Path, model: str):
    path = flip_flop_folder / "models/model.keras"
    if model == "missing":
        path.unlink()
    elif model == "corrupt":
        path.write_bytes(b"not a model")
    else:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = predict(flip_flop_folder, "1011")
    assert (result.returncode, result.stdout) == (1, "")
    (line,) = result.stderr.splitlines()
    assert line.startswith("models/model.keras: cannot be loaded (")
    assert line.endswith("); make it again with `dvc repro -f train`")


@given(st.text(alphabet=st.sampled_from("01 \t2a\u00b9\uff11\n"), max_size=30) | st.text(max_size=10))
def test_parse_bits_accepts_exactly_the_non_empty_strings_of_0_and_1(text):
    try:
        bits = parse_bits(text)
    except ValueError as error:
        assert text == "" or set(text) - {"0", "1"}, text
        assert str(error)
    else:
        assert text and set(text) <= {"0", "1"}
        assert "".join(map(str, bits)) == text
