import json

import pytest

from parity_lstm.rates import best_of, seeds_until_one, wilson
from tools import summarise
from tools.summarise import agreement, choice_table, chosen, table


def fake_run(seed: int, learning_rate: float, epochs: list[int | None], selected: int, at_100: list[float], score=None):
    """One entry of `dvc exp show --json`, reduced to what the summary reads: each member's converged epoch (None:
    not converged), its final-step accuracy at length 100 and, if given, its score over lengths 41-60."""
    train = {"seed": seed, "learning_rate": learning_rate, "population": len(epochs)}
    evaluation = {"by_length": {"100": {"final_step_accuracy": at_100[selected]}}}
    if score:
        evaluation["by_range"] = {"41-60": {"score": score[selected]}}
    if len(epochs) > 1:
        evaluation["members"] = {"100": {"final_step_accuracy": " ".join(map(str, at_100))}}
        if score:
            evaluation["members"]["41-60"] = {"score": " ".join(map(str, score))}
    return {
        "params": {"params.yaml": {"data": {"train": train}}},
        "metrics": {
            "metrics/train/metrics.json": {
                "data": {
                    "member_converged_epochs": " ".join("-" if epoch is None else str(epoch) for epoch in epochs),
                    "selected_member": selected,
                }
            },
            "metrics/evaluate.json": {"data": evaluation},
        },
    }


def exp_show(*runs: dict) -> list[dict]:
    """`dvc exp show --json`: the workspace, then its commit with these experiments."""
    return [
        {"data": runs[0], "experiments": None},
        {"data": runs[0], "experiments": [{"revs": [{"name": f"exp-{n}", "data": run}]} for n, run in enumerate(runs)]},
    ]


def test_every_member_counts_as_a_seed_and_every_population_run_as_a_selected_model():
    running = fake_run(4, 0.01, [None], 0, [0.5])
    del running["metrics"]["metrics/train/metrics.json"]["data"]["member_converged_epochs"]
    rows = summarise.summarise(
        exp_show(
            fake_run(0, 0.001, [None, 4], 1, [0.5, 0.9995]),
            fake_run(2, 0.001, [None, None], 0, [0.5, 0.51]),
            fake_run(0, 0.01, [2], 0, [0.998]),
            fake_run(1, 0.01, [3], 0, [1.0]),
            {"params": {}, "metrics": {}},  # queued: no results yet
            running,  # training: no summary of its members yet
        )
    )
    assert [row["configuration"] for row in rows] == [
        {"train.learning_rate": 0.001, "train.population": 2},
        {"train.learning_rate": 0.01, "train.population": 1},
    ]
    assert rows[0]["members"] == {
        0: {"epoch": None, "scores": {"100": 0.5}},
        1: {"epoch": 4, "scores": {"100": 0.9995}},
        2: {"epoch": None, "scores": {"100": 0.5}},
        3: {"epoch": None, "scores": {"100": 0.51}},
    }
    assert rows[0]["runs"] == {0: {"converged": True, "holds": True}, 2: {"converged": False, "holds": False}}
    assert rows[1]["runs"] == {}  # runs of one member: the member is the run
    assert [seed for seed in rows[1]["members"]] == [0, 1]
    assert table(rows).splitlines()[2:] == [
        "| train.learning_rate=0.001, train.population=2 | 1/4 (0.05-0.70) | 4.0 (1.4-21.9) | 0.44/0.68/0.90/0.99 "
        "| 1 | 1.000/1.000 | 1/2 (0.09-0.91) | 1/2 (0.09-0.91) |",
        "| train.learning_rate=0.01, train.population=1 | 2/2 (0.34-1.00) | 1.0 (1.0-2.9) | 1.00/1.00/1.00/1.00 "
        "| 1 | 0.999/0.998 | - | - |",
    ]
    # Only the experiments named: a sweep's, not the whole history.
    (row,) = summarise.summarise(
        exp_show(fake_run(0, 0.01, [2], 0, [0.998]), fake_run(1, 0.01, [3], 0, [1.0])), {"exp-1"}
    )
    assert list(row["members"]) == [1]


def test_a_tuning_grid_gives_the_best_score_and_the_value_best_on_average():
    rows = summarise.summarise(
        exp_show(
            fake_run(0, 0.001, [None, None], 0, [0.5, 0.5], score=[0.5, 1.0]),  # the best member, the worse mean
            fake_run(0, 0.01, [None, None], 0, [0.5, 0.5], score=[0.995, 0.99]),
            fake_run(0, 0.1, [None], 0, [0.5], score=[0.6]),
        )
    )
    assert "| 100.0 | 1/2 (0.09-0.91) |" in table(rows).splitlines()[2]
    assert "| 99.5 | 2/2 (0.34-1.00) |" in table(rows).splitlines()[3]
    choices = chosen(rows, "train.learning_rate")
    # The population differs with the rate too in this sweep: each population is a group of its own.
    assert [(c["configuration"], c["best"], c["chosen"]) for c in choices] == [
        ({"train.population": 2}, 1.0, 0.01),
        ({"train.population": 1}, 0.6, 0.1),
    ]
    assert (
        choice_table(choices, "train.learning_rate").splitlines()[2] == "| train.population=2, 41-60 | 100.0 | 0.01 |"
    )


def test_configurations_over_the_same_seeds_say_where_they_agree():
    fused = fake_run(0, 0.001, [3, None, 4], 0, [1.0, 0.5, 1.0])
    keras = fake_run(0, 0.002, [3, 5, 4], 0, [1.0, 1.0, 1.0])
    rows = summarise.summarise(exp_show(fused, keras))
    assert agreement(rows) == "The configurations agree on which members converge for 2 of 3 seeds."
    assert agreement(rows[:1]) == ""


def test_the_command_reads_a_file_or_stdin_and_refuses_what_is_not_exp_show(tmp_path, capsys, monkeypatch):
    path = tmp_path / "exps.json"
    path.write_text(json.dumps(exp_show(fake_run(0, 0.01, [2], 0, [1.0]))))
    summarise.main([str(path)])
    assert "| all runs | 1/1 (0.21-1.00) |" in capsys.readouterr().out
    path.write_text("Queued experiment 'x'")
    with pytest.raises(SystemExit, match=r"^not the output of `dvc exp show --json`"):
        summarise.main([str(path)])
    path.write_text(json.dumps(exp_show({"params": {}, "metrics": {}})))
    with pytest.raises(SystemExit, match=r"^no finished experiment"):
        summarise.main([str(path)])


@pytest.mark.parametrize(
    "successes, trials, low, high", [(16, 20, 0.584, 0.919), (20, 20, 0.839, 1.0), (0, 10, 0.0, 0.278)]
)
def test_wilson_interval(successes, trials, low, high):
    assert wilson(successes, trials) == pytest.approx((low, high), abs=5e-4)


def test_seeds_until_one_and_best_of_k():
    assert seeds_until_one(16, 20) == "1.2 (1.1-1.7)" and seeds_until_one(0, 10) == "more than 4"
    assert best_of(1, 2, 3) == pytest.approx(0.875)


def test_runs_scored_over_a_range_alone_are_summarised():
    """With only a range in `evaluate.lengths`, `by_length` is empty, and `dvc exp show` leaves it out."""
    runs = [fake_run(0, 0.01, [None, 3], 1, [0.5, 1.0], score=[0.6, 0.995]), fake_run(0, 0.02, [None], 0, [0.5], [0.7])]
    for run in runs:
        evaluation = run["metrics"]["metrics/evaluate.json"]["data"]
        del evaluation["by_length"]
        evaluation.get("members", {}).pop("100", None)
    rows = summarise.summarise(exp_show(*runs))
    assert [[member["scores"] for member in row["members"].values()] for row in rows] == [
        [{"41-60": 0.6}, {"41-60": 0.995}],
        [{"41-60": 0.7}],
    ]
    assert rows[0]["runs"] == {}
    assert "| 99.5 | 1/2 (0.09-0.91) |" in table(rows)


def test_unfinished_experiments_and_other_params_are_left_out(tmp_path, capsys):
    """A queued, running or failed experiment shows its baseline's metrics: it must not count as a run."""
    shown = exp_show(
        fake_run(0, 0.01, [2], 0, [1.0]), fake_run(1, 0.01, [None], 0, [0.5]), fake_run(2, 0.02, [3], 0, [1.0])
    )
    experiments = shown[1]["experiments"]
    experiments[1]["executor"] = {"state": "failed"}
    experiments.append(
        {"executor": {"state": "running"}, "revs": [{"name": "x", "data": fake_run(3, 0.01, [2], 0, [1.0])}]}
    )
    experiments.append({"revs": [{"name": "y", "data": None, "error": {"type": "CollectionError"}}]})
    rows = summarise.summarise(shown)
    assert [list(row["members"]) for row in rows] == [[0], [2]]
    assert [list(row["members"]) for row in summarise.summarise(shown, where={"train.learning_rate": 0.02})] == [[2]]
    path = tmp_path / "exps.json"
    path.write_text(json.dumps(shown))
    summarise.main([str(path), "--where", "train.learning_rate=0.02"])
    assert "| all runs | 1/1 (0.21-1.00) |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"^--choose train.units: not a param that differs"):
        summarise.main([str(path), "--choose", "train.units"])


def test_a_seed_in_two_runs_of_one_configuration_counts_once():
    """Seeds 0-7 and 4-11 overlap: members 4-7 count once, as the first run trained them."""
    first, second = fake_run(0, 0.01, [2] * 8, 0, [1.0] * 8), fake_run(4, 0.01, [None] * 8, 0, [0.5] * 8)
    (row,) = summarise.summarise(exp_show(first, second))
    assert list(row["members"]) == list(range(12))
    assert [row["members"][seed]["epoch"] for seed in (3, 4, 7, 8)] == [2, 2, 2, None]
    assert list(row["runs"]) == [0, 4]
