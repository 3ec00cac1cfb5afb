"""params.yaml: every value is either accepted as valid or refused with one line naming the key (one per bad element
of a list)."""

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from devkit.scratch_repo import REPO
from parity_lstm.params import SCHEMAS, check_keys, check_params, length_range, load_params

DEFAULTS = yaml.safe_load((REPO / "params.yaml").read_text())
VALUES = st.one_of(
    st.integers(-3, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.none(),
    st.booleans(),
    st.lists(st.integers(-2, 20_000), max_size=3),
    st.sampled_from(["running", "final", "uniform", "inverse_position"]),
)


def load(tmp_path: Path, section: str, params: dict):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return load_params(section, SCHEMAS[section], path)


def refusal(tmp_path: Path, section: str, params: dict) -> str:
    with pytest.raises(SystemExit) as refused:
        load(tmp_path, section, params)
    return str(refused.value.code)


def test_the_committed_params_are_valid(tmp_path):
    for section in SCHEMAS:
        assert load(tmp_path, section, DEFAULTS).model_dump() == DEFAULTS[section]


@settings(max_examples=300)
@given(data=st.data(), value=VALUES)
def test_any_value_is_valid_or_refused_in_one_line_naming_the_key(tmp_path_factory, data, value):
    section = data.draw(st.sampled_from(list(SCHEMAS)))
    key = data.draw(st.sampled_from(list(SCHEMAS[section].model_fields)))
    params = copy.deepcopy(DEFAULTS)
    params[section][key] = value
    tmp_path = tmp_path_factory.mktemp("params")
    try:
        loaded = load(tmp_path, section, params)
    except SystemExit as refused:
        lines = str(refused.code).splitlines()
        # One line, or one per bad element of a list, each naming the key and what it refuses: the whole value, or
        # the list element it names by its index.
        assert len(lines) == 1 or all(re.search(rf"{section}\.{key}\.\d+ = ", line) for line in lines), lines
        for line in lines:
            assert f"{section}.{key}" in line, line
            element = re.search(rf"{section}\.{key}\.(\d+) = (.*?): ", line)
            named = repr(value[int(element[1])]) == element[2] if element else repr(value) in line
            assert named or "must be at most" in line, line
    else:
        assert not isinstance(value, bool)  # strict: `true` is no number
        assert getattr(loaded, key) == value


LENGTH = "expected a length (a positive integer) or a range of lengths low-high, low < high, e.g. 41-500"


@pytest.mark.parametrize(
    "section, key, value, expected",
    [
        ("data", "seq_len", 0, "data.seq_len = 0: Input should be greater than 0"),
        ("data", "count", True, "data.count = True: Input should be a valid integer"),
        ("data", "min_len", 60, "data: Value error, data.min_len (60) must be at most data.seq_len (50)"),
        ("train", "learning_rate", -0.1, "train.learning_rate = -0.1: Input should be greater than 0"),
        ("train", "forget_bias", float("inf"), "train.forget_bias = inf: Input should be a finite number"),
        ("train", "batch_size", "128", "train.batch_size = '128': Input should be a valid integer"),
        ("train", "stop_at_accuracy", 1.5, "train.stop_at_accuracy = 1.5: Input should be less than or equal to 1"),
        ("train", "stop_at_accuracy", 0.0, "train.stop_at_accuracy = 0.0: Input should be greater than 0"),
        ("targets", "mode", "last", "targets.mode = 'last': Input should be 'running' or 'final'"),
        ("evaluate", "lengths", [], "evaluate.lengths = []: List should have at least 1 item after validation, not 0"),
        (
            "evaluate",
            "lengths",
            [0, 50, -1],
            f"evaluate.lengths.0 = 0: Value error, {LENGTH}\n{{path}}: evaluate.lengths.2 = -1: Value error, {LENGTH}",
        ),
        ("evaluate", "lengths", [50, "500-41"], f"evaluate.lengths.1 = '500-41': Value error, {LENGTH}"),
        ("evaluate", "lengths", ["0-41"], f"evaluate.lengths.0 = '0-41': Value error, {LENGTH}"),
        ("evaluate", "lengths", ["41-"], f"evaluate.lengths.0 = '41-': Value error, {LENGTH}"),
        ("evaluate", "lengths", ["50"], f"evaluate.lengths.0 = '50': Value error, {LENGTH}"),
        ("evaluate", "lengths", [True], f"evaluate.lengths.0 = True: Value error, {LENGTH}"),
        ("evaluate", "lengths", [50, 50], "evaluate: Value error, evaluate.lengths [50, 50] names a length twice"),
    ],
)
def test_refusals_say_what_is_allowed(tmp_path, section, key, value, expected):
    """Each bad value, one line naming it and what is allowed."""
    params = copy.deepcopy(DEFAULTS)
    params[section][key] = value
    path = tmp_path / "params.yaml"
    assert refusal(tmp_path, section, params) == f"{path}: {expected.format(path=path)}"


def test_a_misspelt_key_is_named_with_the_closest_valid_one(tmp_path):
    params = copy.deepcopy(DEFAULTS)
    params["train"]["learning_rat"] = params["train"].pop("learning_rate")
    lines = refusal(tmp_path, "train", params).splitlines()
    assert any("unknown key train.learning_rat (did you mean train.learning_rate?)" in line for line in lines)
    assert any("train.learning_rate is missing" in line for line in lines)


def test_a_missing_block_or_file_is_one_line(tmp_path):
    assert refusal(tmp_path, "evaluate", {"data": DEFAULTS["data"]}).endswith("no `evaluate:` block")
    with pytest.raises(SystemExit, match="cannot read it"):
        load_params("data", SCHEMAS["data"], tmp_path / "nowhere.yaml")


def test_a_stage_with_bad_params_exits_before_writing_anything(tmp_path):
    params = copy.deepcopy(DEFAULTS)
    params["data"]["count"] = -5
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run(
        [sys.executable, "-m", "stages.generate"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["params.yaml: data.count = -5: Input should be greater than 0"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["params.yaml"]


def test_check_params_names_an_unknown_block_and_passes_the_defaults(tmp_path: Path):
    check_params(REPO / "params.yaml")
    params = copy.deepcopy(DEFAULTS)
    misspelt = tmp_path / "params.yaml"
    misspelt.write_text(yaml.safe_dump({**params, "trian": params["train"]}))
    with pytest.raises(SystemExit, match=r"unknown block `trian:` \(did you mean train\?\)"):
        check_params(misspelt)
    misspelt.write_text(yaml.safe_dump({**params, "train": {**params["train"], "epochs": 0}}))
    with pytest.raises(SystemExit, match=r"train\.epochs = 0: Input should be greater than 0"):
        check_params(misspelt)
    misspelt.write_text(yaml.safe_dump([params]))  # no mapping of blocks at all
    with pytest.raises(SystemExit, match="no `data:` block"):
        check_params(misspelt)


def test_an_override_key_that_names_no_param_is_refused_in_one_line_with_the_nearest():
    """What a sweep's `plan` runs before it applies a grid's keys: DVC's own refusal does not say which keys exist."""
    every_key = [f"{section}.{field}" for section, schema in SCHEMAS.items() for field in schema.model_fields]
    check_keys(every_key)
    with pytest.raises(SystemExit) as refused:
        check_keys(["train.seed", "train.learning_rat"])
    assert str(refused.value) == (
        "train.learning_rat is not a param; the nearest: train.learning_rate, train.units, train.engine"
    )
    with pytest.raises(SystemExit, match=r"^nosuchkey is not a param; the nearest: data\.seq_len, "):
        check_keys(["nosuchkey"])


@pytest.mark.parametrize(("min_len", "valid"), [(1, True), (50, True), (51, False)])
def test_min_len_may_be_anything_up_to_seq_len(tmp_path, min_len, valid):
    params = copy.deepcopy(DEFAULTS)
    params["data"] |= {"seq_len": 50, "min_len": min_len}
    if valid:
        assert load(tmp_path, "data", params).min_len == min_len
    else:
        assert refusal(tmp_path, "data", params).endswith("data.min_len (51) must be at most data.seq_len (50)")


@pytest.mark.parametrize(("engine", "units", "valid"), [("fused", 16, True), ("fused", 17, False), ("keras", 17, True)])
def test_the_fused_engine_refuses_more_units_than_it_runs(tmp_path, engine, units, valid):
    params = copy.deepcopy(DEFAULTS)
    params["train"] |= {"engine": engine, "units": units}
    if valid:
        assert load(tmp_path, "train", params).units == units
    else:
        assert "train.units (17) is more than the fused engine runs (16)" in refusal(tmp_path, "train", params)


def test_the_params_command_checks_the_keys_it_is_given_then_every_block(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(DEFAULTS))

    def command(*keys: str) -> subprocess.CompletedProcess:
        environment = {**os.environ, "PYTHONPATH": str(REPO)}
        return subprocess.run(
            [sys.executable, "-m", "parity_lstm.params", *keys], cwd=tmp_path, env=environment, capture_output=True
        )

    assert command().returncode == 0 and command("train.seed", "data.count").returncode == 0
    refused = command("train.seed", "train.sede")
    assert refused.returncode == 1 and refused.stderr.decode().startswith("train.sede is not a param; the nearest: ")


def test_params_are_read_only_once_loaded_and_stop_at_accuracy_takes_any_share(tmp_path):
    params = copy.deepcopy(DEFAULTS)
    params["train"]["stop_at_accuracy"] = 0.5
    train = load(tmp_path, "train", params)
    assert train.stop_at_accuracy == 0.5
    with pytest.raises(ValidationError, match="frozen"):
        train.seed = 3


def test_a_range_of_lengths_is_written_low_high_and_names_every_length_in_it(tmp_path):
    params = copy.deepcopy(DEFAULTS)
    params["evaluate"]["lengths"] = [50, "41-500", "1-2"]
    loaded = load(tmp_path, "evaluate", params)
    assert loaded.lengths == [50, "41-500", "1-2"]
    assert length_range("41-500") == range(41, 501) and list(length_range("1-2")) == [1, 2]
