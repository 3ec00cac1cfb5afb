"""The tiny pipeline the end-to-end tests run, and what DVC's messages say it did."""

import re
import shutil
from pathlib import Path

from devkit.scratch_repo import commit, dvc, make_scratch_repo

STAGES = ("generate", "targets", "train", "evaluate")
TINY_PARAMS = {
    "data": {"seq_len": 6, "min_len": None, "count": 256, "val_count": 64, "test_count": 64, "seed": 0},
    "targets": {"mode": "running", "weighting": "uniform"},
    "train": {
        "engine": "fused",
        "cell": "lstm",
        "units": 1,
        "epochs": 1,
        "batch_size": 64,
        "learning_rate": 0.01,
        "forget_bias": 1.0,
        "seed": 0,
        "population": 1,
        "stop_at_accuracy": None,
    },
    "evaluate": {"lengths": [6, 30], "sequences_per_length": 20, "seed": 0},
}


def stages_run(output: str) -> dict[str, set[str]]:
    """Which stages a `dvc repro` or `dvc exp run` output says it ran, restored from the run-cache, or skipped."""
    return {
        "ran": set(re.findall(r"Running stage '(\w+)'", output)),
        "restored": set(re.findall(r"Stage '(\w+)' is cached - skipping run", output)),
        "skipped": set(re.findall(r"Stage '(\w+)' didn't change, skipping", output)),
    }


def repro(cwd: Path) -> dict[str, set[str]]:
    return stages_run(dvc(cwd, "repro"))


def ran_exactly(*stages: str) -> dict[str, set[str]]:
    return {"ran": set(stages), "restored": set(), "skipped": set(STAGES) - set(stages)}


def repo_with_folder_remote(path: Path) -> Path:
    """The tiny pipeline in a new git repo at `path`, whose default DVC remote `shared` is the folder beside it,
    `path`_storage, committed."""
    make_scratch_repo(path, TINY_PARAMS)
    dvc(path, "remote", "add", "-d", "shared", str(path.parent / f"{path.name}_storage"))
    commit(path, "a folder DVC remote")
    return path


def copy_of(repo: Path, path: Path) -> Path:
    """A copy of `repo` (its git history, DVC cache and outputs) at `path`, with a folder DVC remote of its own,
    committed: a clone of the copy uses that remote too."""
    shutil.copytree(repo, path, symlinks=True)
    dvc(path, "remote", "modify", "shared", "url", str(path.parent / f"{path.name}_storage"))
    commit(path, "a DVC remote of its own")
    return path
