import json
from pathlib import Path

from stages.convergence import summarise, table
from tests.scratch_repo import dvc, make_scratch_repo, run
from tests.test_pipeline import TINY_PARAMS


def fake_run(seed: int, learning_rate: float, final_step_accuracy: float, epoch: int | None) -> dict:
    """One entry of `dvc exp show --json`, reduced to what the summary reads."""
    return {
        "params": {"params.yaml": {"data": {"train": {"seed": seed, "learning_rate": learning_rate, "units": 1}}}},
        "metrics": {
            "metrics/evaluate.json": {"data": {"final_step_accuracy": final_step_accuracy}},
            "metrics/train/metrics.json": {"data": {"converged_epoch": epoch}},
        },
    }


def test_groups_by_everything_but_the_seed_and_counts_converged_seeds():
    exp_show = [
        {"data": fake_run(0, 0.001, 0.5, None), "experiments": None},  # the workspace, repeated by its commit
        {
            "data": fake_run(0, 0.001, 0.5, None),
            "experiments": [
                {"revs": [{"data": fake_run(1, 0.001, 0.999, 4)}]},
                {"revs": [{"data": fake_run(0, 0.01, 0.995, 2)}]},
                {"revs": [{"data": fake_run(1, 0.01, 0.9999, 3)}]},
                {"revs": [{"data": {"params": {}, "metrics": {}}}]},  # queued: no results yet
            ],
        },
    ]
    rows = summarise(exp_show)
    assert rows == [
        {
            "configuration": "train.learning_rate=0.001",
            "seeds": {0: {"converged": False, "epoch": None}, 1: {"converged": True, "epoch": 4}},
        },
        {
            "configuration": "train.learning_rate=0.01",
            "seeds": {0: {"converged": True, "epoch": 2}, 1: {"converged": True, "epoch": 3}},
        },
    ]
    assert table(rows).splitlines()[2:] == [
        "| train.learning_rate=0.001 | 2 | 1/2 | 0: -, 1: 4 |",
        "| train.learning_rate=0.01 | 2 | 2/2 | 0: 2, 1: 3 |",
    ]


def test_a_real_queued_sweep_with_two_workers(tmp_path: Path):
    repo = make_scratch_repo(tmp_path, TINY_PARAMS)
    dvc(repo, "exp", "run", "--queue", "-S", "train.seed=0,1")
    dvc(repo, "queue", "start", "-j", "2")
    run(repo, "timeout", "300", "sh", "-c", "while dvc queue status | grep -qE 'Queued|Running'; do sleep 2; done")
    assert "Failed" not in dvc(repo, "queue", "status")
    [row] = summarise(json.loads(dvc(repo, "exp", "show", "--json", stderr=False)))
    assert row["configuration"] == "all runs" and row["seeds"].keys() == {0, 1}
    for seed in row["seeds"].values():
        assert seed["epoch"] is None or 1 <= seed["epoch"] <= TINY_PARAMS["train"]["epochs"]
