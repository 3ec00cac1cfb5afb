"""A study is a grid a user queues with DVC and summarises with `python -m tools.summarise`: a 2 x 2 grid of
populations through the real queue, as bench/studies.py runs every study of docs/results.md."""

import json
import shlex
from pathlib import Path

import pytest

from bench.studies import STUDIES, follow_ups, run_grid
from devkit.scratch_repo import dvc
from tests.tiny_pipeline import copy_of
from tools.summarise import summarise, table


def test_a_queued_grid_of_populations_is_summarised_with_the_counts_its_experiments_wrote(trained_repo, tmp_path: Path):
    repo = copy_of(trained_repo.path, tmp_path / "repo")
    grid = (
        "-S 'train.cell=lstm,gru' -S 'train.learning_rate=0.05,0.2' -S train.population=3 -S train.epochs=4 "
        "-S data.count=1024 "
        "-S 'evaluate.lengths=[6,40,7-12]'"
    )
    ran = run_grid(repo, grid, jobs=2)
    assert len(ran["experiments"]) == 4
    exp_show = json.loads(dvc(repo, "exp", "show", "--json", stderr=False))
    rows = summarise(exp_show, names=set(ran["experiments"]))

    # What each experiment wrote, by its configuration: its members' converged count and who holds at length 40.
    wrote = {}
    for experiment in exp_show[-1]["experiments"]:
        data = experiment["revs"][0]["data"]
        train = data["params"]["params.yaml"]["data"]["train"]
        metrics = {path: found["data"] for path, found in data["metrics"].items()}
        wrote[(train["cell"], train["learning_rate"])] = (
            metrics["metrics/train/metrics.json"]["converged_members"],
            metrics["metrics/evaluate.json"]["members"]["40"]["holding"],
            metrics["metrics/evaluate.json"]["members"]["7-12"]["best"],
        )
    assert len(rows) == len(wrote) == 4
    for row in rows:
        members = row["members"].values()
        assert list(row["members"]) == [0, 1, 2]  # train.seed 0, members 0-2
        summary = (
            sum(member["epoch"] is not None for member in members),
            sum(member["scores"]["40"] >= 0.999 for member in members),
            max(member["scores"]["7-12"] for member in members),
        )
        assert summary == pytest.approx(
            wrote[(row["configuration"]["train.cell"], row["configuration"]["train.learning_rate"])]
        )
    lines = table(rows).splitlines()
    assert len(lines) == 2 + 4 and lines[2].startswith("| train.cell=gru, train.learning_rate=0.05 | ")


def test_a_tuning_study_confirms_each_chosen_value_on_fresh_seeds():
    study = STUDIES["deletang"]
    choices = [{"configuration": {"train.cell": "gru"}, "chosen": 0.003}]
    (grid,) = follow_ups(study, choices)
    assert grid.startswith("-S train.cell=gru -S train.learning_rate=0.003 -S train.population=100 -S train.seed=3100")
    # A list value stays one argument.
    (grid,) = follow_ups(study, [{"configuration": {"evaluate.lengths": [50, 100]}, "chosen": 0.01}])
    assert shlex.split(grid)[:2] == ["-S", "evaluate.lengths=[50,100]"]
    tuning_seeds = {int(word.split("=")[1]) for word in study.grids[0].split() if word.startswith("train.seed=")}
    assert tuning_seeds == {3000}  # members 3000-3009: apart from the confirmation's 3100-3199
