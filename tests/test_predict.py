import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stages.predict import MAX_BITS, parse_bits


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


def test_predict_command_prints_parity_for_each_line_and_reports_bad_ones(flip_flop_model, tmp_path):
    (tmp_path / "models").mkdir()
    flip_flop_model.save(tmp_path / "models/model.keras")
    long = "1" * 2001  # far longer than any training: 2001 ones, odd
    result = subprocess.run(
        [sys.executable, "-m", "stages.predict"],
        input=f"1011001\n0110\n\n10a\n1\n{long}\n",
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [(bits, predicted, true) for bits, predicted, _, true in rows] == [
        ("1011001", "0", "0"),
        ("0110", "0", "0"),
        ("1", "1", "1"),
        (long, "1", "1"),
    ]
    assert all(float(confidence) > 0.99 for _, _, confidence, _ in rows)
    assert "sequence 3: empty" in result.stderr and "sequence 4:" in result.stderr


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
