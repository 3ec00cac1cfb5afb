import pytest

from stages.convergence import summarise, table, wilson


def fake_run(seed: int, learning_rate: float, epochs: list[int | None], selected: int, at_longest: float) -> dict:
    """One entry of `dvc exp show --json`, reduced to what the summary reads."""
    train = {"seed": seed, "learning_rate": learning_rate, "population": len(epochs)}
    return {
        "params": {"params.yaml": {"data": {"train": train}}},
        "metrics": {
            "metrics/train/metrics.json": {
                "data": {
                    "member_converged_epochs": " ".join("-" if epoch is None else str(epoch) for epoch in epochs),
                    "selected_member": selected,
                }
            },
            "metrics/evaluate.json": {
                "data": {
                    "by_length": {"50": {"final_step_accuracy": 1.0}, "10000": {"final_step_accuracy": at_longest}}
                }
            },
        },
    }


def test_every_member_counts_as_a_seed_and_every_run_as_a_selected_model():
    running = fake_run(4, 0.01, [None], 0, 1.0)
    del running["metrics"]["metrics/train/metrics.json"]["data"]["member_converged_epochs"]
    exp_show = [
        {"data": fake_run(0, 0.001, [None, 4], 1, 0.9995), "experiments": None},  # the workspace, as its commit
        {
            "data": fake_run(0, 0.001, [None, 4], 1, 0.9995),
            "experiments": [
                {"revs": [{"data": fake_run(2, 0.001, [None, None], 0, 0.5)}]},
                {"revs": [{"data": fake_run(0, 0.01, [2], 0, 0.998)}]},
                {"revs": [{"data": fake_run(1, 0.01, [3], 0, 1.0)}]},
                {"revs": [{"data": {"params": {}, "metrics": {}}}]},  # queued: no results yet
                {"revs": [{"data": running}]},  # training: no summary of its members yet
            ],
        },
    ]
    rows = summarise(exp_show)
    assert rows == [
        {
            "configuration": "train.learning_rate=0.001, train.population=2",
            "members": {0: None, 1: 4, 2: None, 3: None},
            "runs": {
                0: {"converged": True, "holds": True, "longest": 10000},
                2: {"converged": False, "holds": False, "longest": 10000},
            },
        },
        {
            "configuration": "train.learning_rate=0.01, train.population=1",
            "members": {0: 2, 1: 3},
            "runs": {
                0: {"converged": True, "holds": False, "longest": 10000},
                1: {"converged": True, "holds": True, "longest": 10000},
            },
        },
    ]
    assert table(rows).splitlines()[2:] == [
        "| train.learning_rate=0.001, train.population=2 | 2 | 1/4 | 0.05-0.70 | 4 | 0, 2, 3 | 1/2 | 0.09-0.91 "
        "| 1/2 | 0.09-0.91 | 10000 |",
        "| train.learning_rate=0.01, train.population=1 | 2 | 2/2 | 0.34-1.00 | 2.5 | - | 2/2 | 0.34-1.00 "
        "| 1/2 | 0.09-0.91 | 10000 |",
    ]


@pytest.mark.parametrize(
    "successes, trials, low, high", [(16, 20, 0.584, 0.919), (20, 20, 0.839, 1.0), (0, 10, 0.0, 0.278)]
)
def test_wilson_interval(successes, trials, low, high):
    assert wilson(successes, trials) == pytest.approx((low, high), abs=5e-4)
