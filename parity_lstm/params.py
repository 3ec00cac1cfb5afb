"""params.yaml: one strict schema per block, checked before a stage does any work.

python -m parity_lstm.params          check every block of params.yaml, as each stage will
"""

import difflib
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PlainValidator,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)

PARAMS_FILE = Path("params.yaml")


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


def length_or_range(value: object) -> int | str:
    """A test length (a positive integer), or a range of them written `low-high` (`41-500`: lengths 41 to 500)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    bounds = re.fullmatch(r"([1-9]\d*)-([1-9]\d*)", value) if isinstance(value, str) else None
    if bounds and int(bounds[1]) < int(bounds[2]):
        return value
    raise ValueError("expected a length (a positive integer) or a range of lengths low-high, low < high, e.g. 41-500")


def length_range(text: str) -> range:
    """The lengths a `low-high` entry of `evaluate.lengths` names, both ends included."""
    low, high = map(int, text.split("-"))
    return range(low, high + 1)


class EvaluateParams(Params):
    # Lengths of fresh sequences to score at; a range `low-high` is scored as Delétang et al. score (the mean over its
    # lengths of the final-step accuracy).
    lengths: list[Annotated[int | str, PlainValidator(length_or_range)]] = Field(min_length=1)
    sequences_per_length: PositiveInt
    seed: NonNegativeInt

    @model_validator(mode="after")
    def _each_length_once(self):
        if len(set(self.lengths)) < len(self.lengths):
            raise ValueError(f"evaluate.lengths {self.lengths} names a length twice")
        return self


# The fused engine keeps a copy of its member's weights in every lane it runs (parity_lstm/numerics): past this many
# units (4u^2 + 14u + 2 weights a member), the copies outgrow the core's caches.
FUSED_MAX_UNITS = 16


class TrainParams(Params):
    # fused: the numba engine (parity_lstm/numerics), the default; keras: the TensorFlow population, its oracle.
    engine: Literal["fused", "keras"]
    # The recurrent cell, with Keras' defaults (parity_lstm.model): lstm (the reference experiment's), gru, simple_rnn.
    cell: Literal["lstm", "gru", "simple_rnn"]
    units: PositiveInt
    epochs: PositiveInt
    batch_size: PositiveInt
    learning_rate: PositiveFloat
    # Initial bias of an LSTM's forget gate (Keras' default: 1). Higher: the cell holds its state from the start. Other
    # cells have no forget gate and take no notice of it.
    forget_bias: float
    seed: NonNegativeInt
    # Members trained together: member k starts from the initial weights of `seed + k`; the best one is kept.
    population: PositiveInt
    # Stop after the first epoch in which a member's validation final-step accuracy reaches this; null: all `epochs`.
    stop_at_accuracy: float | None = Field(gt=0, le=1)

    @model_validator(mode="after")
    def _units_the_engine_runs(self):
        if self.engine == "fused" and self.units > FUSED_MAX_UNITS:
            raise ValueError(
                f"train.units ({self.units}) is more than the fused engine runs ({FUSED_MAX_UNITS}); "
                "set train.engine: keras"
            )
        return self


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


def check_keys(keys: Iterable[str]) -> None:
    """Exit in one line if a key (`section.field`, as `dvc exp run -S` takes it) names no param, with the nearest."""
    params = [f"{section}.{field}" for section, schema in SCHEMAS.items() for field in schema.model_fields]
    for key in keys:
        if key not in params:
            nearest = difflib.get_close_matches(key, params, n=3, cutoff=0.5) or params
            raise SystemExit(f"{key} is not a param; the nearest: {', '.join(nearest)}")


if __name__ == "__main__":
    # The Airflow DAGs run this with a run's override keys before applying them, then without to check the values.
    check_keys(sys.argv[1:])
    check_params()
    print(f"{PARAMS_FILE}: every block is valid")
