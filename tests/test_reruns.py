"""What `dvc repro` reruns when one param changes, for every param: the stage that reads the key, then each later
stage whose inputs that run changed. Judged by DVC's own messages, on a copy of the session's tiny run."""

from pathlib import Path

import pytest
import yaml

from devkit.scratch_repo import dvc, run, set_param
from parity_lstm.params import SCHEMAS
from tests.tiny_pipeline import STAGES, copy_of, ran_exactly, repro

TRAIN_AND_EVALUATE = ("train", "evaluate")
# key: (a new value, the stages that rerun). Every other stage is skipped.
RERUNS = {
    "data.seq_len": (8, STAGES),
    "data.min_len": (3, STAGES),
    "data.count": (320, STAGES),
    # Validation moves no weight of a population of one trained to the end: the same model bytes, `evaluate` skipped.
    "data.val_count": (96, ("generate", "targets", "train")),
    # The training and validation files keep their bytes: `train` is skipped.
    "data.test_count": (96, ("generate", "targets", "evaluate")),
    "data.seed": (1, STAGES),
    "targets.mode": ("final", ("targets", *TRAIN_AND_EVALUATE)),
    "targets.weighting": ("inverse_position", ("targets", *TRAIN_AND_EVALUATE)),
    "train.engine": ("keras", TRAIN_AND_EVALUATE),
    "train.cell": ("gru", TRAIN_AND_EVALUATE),
    "train.units": (2, TRAIN_AND_EVALUATE),
    "train.epochs": (2, TRAIN_AND_EVALUATE),
    "train.batch_size": (32, TRAIN_AND_EVALUATE),
    "train.learning_rate": (0.02, TRAIN_AND_EVALUATE),
    "train.forget_bias": (2.0, TRAIN_AND_EVALUATE),
    "train.seed": (1, TRAIN_AND_EVALUATE),
    # A population has more members to score: `evaluate` reruns, whichever member is selected.
    "train.population": (2, TRAIN_AND_EVALUATE),
    # The tiny run trains one epoch: stopping after the first gives the same model, so `evaluate` is skipped.
    "train.stop_at_accuracy": (0.5, ("train",)),
    "evaluate.lengths": ([6, 12], ("evaluate",)),
    "evaluate.sequences_per_length": (30, ("evaluate",)),
    "evaluate.seed": (1, ("evaluate",)),
}


def test_the_table_has_every_param():
    keys = [f"{section}.{key}" for section, schema in SCHEMAS.items() for key in schema.model_fields]
    assert sorted(RERUNS) == sorted(keys)


@pytest.fixture(scope="module")
def repo(trained_repo, tmp_path_factory) -> Path:
    """One copy of the tiny run for every key: each test puts it back as committed (params, dvc.lock and metrics
    from git, the other outputs from DVC's cache)."""
    return copy_of(trained_repo.path, tmp_path_factory.mktemp("reruns") / "repo")


# In the default tier: the keys whose rerun sets a wrong dependency would change without failing another test.
QUICK = {"data.val_count", "data.test_count", "train.cell", "train.population", "train.stop_at_accuracy"} | {
    "evaluate.seed"
}


@pytest.mark.parametrize("key", [key if key in QUICK else pytest.param(key, marks=pytest.mark.slow) for key in RERUNS])
def test_a_param_change_reruns_its_stage_and_the_later_stages_whose_inputs_change(repo: Path, key: str):
    value, expected = RERUNS[key]
    section, field = key.split(".")
    set_param(repo, section, field, value)
    try:
        ran = repro(repo)
        assert ran == ran_exactly(*expected)
        locked = yaml.safe_load((repo / "dvc.lock").read_text())["stages"][expected[0]]["params"]["params.yaml"]
        assert locked[key] == value  # the run recorded the new value
    finally:
        run(repo, "git", "checkout", "--", ".")
        dvc(repo, "checkout")
