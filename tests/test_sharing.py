"""Sharing results between machines: a git server for the code and dvc.lock, one DVC remote for the outputs."""

import json
from pathlib import Path

import numpy as np
import pytest

from devkit.scratch_repo import dvc, identify, run
from parity_lstm.trained import load_trained_model
from tests.tiny_pipeline import copy_of, ran_exactly, repro


def experiment(exp_show: list[dict], name: str) -> dict:
    """The params and metrics of the experiment `name` in `dvc exp show --json`."""
    for baseline in exp_show:
        for experiment in baseline.get("experiments") or []:
            for rev in experiment["revs"]:
                if rev.get("name") == name:
                    return rev["data"]
    raise AssertionError(f"no experiment {name} in {exp_show}")


def same_weights(first: Path, second: Path) -> bool:
    pairs = zip(load_trained_model(first).weights, load_trained_model(second).weights, strict=True)
    return all(np.array_equal(a, b) for a, b in pairs)


@pytest.mark.slow
def test_two_machines_share_outputs_and_experiments_through_one_remote(trained_repo, tmp_path: Path):
    server = tmp_path / "server.git"
    run(tmp_path, "git", "init", "-q", "--bare", str(server))
    # Machine A has run the pipeline and committed its results; it pushes code and dvc.lock to git, outputs to a
    # folder remote.
    a = copy_of(trained_repo.path, tmp_path / "a")
    run(a, "git", "remote", "add", "origin", str(server))
    run(a, "git", "push", "-q", "origin", "HEAD")
    # 7 data arrays, the model, the plot data (4 training curves and their directory, 3 evaluate CSVs); the metrics
    # are in git.
    assert "17 files pushed" in dvc(a, "push")

    # Machine B clones and pulls: everything is up to date, no stage runs again.
    b = tmp_path / "b"
    run(tmp_path, "git", "clone", "-q", str(server), str(b))
    identify(b)
    dvc(b, "pull")
    assert "Data and pipelines are up to date" in dvc(b, "status")
    assert repro(b) == ran_exactly()
    for output in ("data/train_bits.npy", "data/val_parity.npy", "data/test_parity.npy", "data/train_loss_factors.npy"):
        assert (b / output).read_bytes() == (a / output).read_bytes()
    assert same_weights(a / "models/model.keras", b / "models/model.keras")

    # B runs an experiment (other test lengths: only `evaluate` reruns) and pushes it; A pulls it, outputs included,
    # and sees its results.
    dvc(b, "exp", "run", "-n", "longer", "-S", "evaluate.lengths=[6,12,60]")
    dvc(b, "exp", "push", "origin", "longer")
    dvc(a, "exp", "pull", "origin", "longer")
    shared = experiment(json.loads(dvc(a, "exp", "show", "--json", stderr=False)), "longer")
    assert shared["params"]["params.yaml"]["data"]["evaluate"]["lengths"] == [6, 12, 60]
    assert shared["metrics"]["metrics/evaluate.json"]["data"]["by_length"].keys() == {"6", "12", "60"}
    dvc(a, "exp", "apply", "longer")
    by_length = "metrics/evaluate_accuracy_by_length.csv"  # a DVC-cached output, made on B only
    assert (a / by_length).read_bytes() == (b / by_length).read_bytes()
    assert len((a / by_length).read_text().splitlines()) == 4  # a header and the three lengths
