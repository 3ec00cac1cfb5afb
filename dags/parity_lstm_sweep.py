"""A sweep as an Airflow DAG: one task per experiment of a grid, then the convergence table of them all.

    airflow dags test parity_lstm_sweep -c '{"grid": {"train.seed": [0, 1]}, "set_params": ["train.epochs=1"]}'
    airflow dags test parity_lstm_sweep -c '{"grid": ["train.cell=lstm,gru", "train.seed=range(0,2)"]}'

Run conf: `grid` ({"param": [values, ...]}: one experiment per combination; or, as a study of docs/results.md
prints it, the `-S` values of `dvc exp run --queue`; required), and `set_params`, `repo`,
`rev` as for the pipeline DAG (parity_lstm_checkout.RUN_CONF). Each experiment is `dvc exp run` in a checkout of
its own, named `<run id>-<map index>` and pushed to the repository (`dvc exp push`); a failed one fails its own task
and no other, and is retried: a retry keeps what an earlier try pushed, and computes only what it did not. The last
task makes the table of `python -m tools.summarise` for the sweep's experiments, returns it, and pushes it to the
repository as `convergence.md` on the branch `sweeps/<run id>`, on top of the commit the sweep ran:

    git fetch origin sweeps/<run id> && git show FETCH_HEAD:convergence.md
"""

import itertools
import json
import sys
from datetime import timedelta

from airflow.sdk import Param, TriggerRule, dag, task
from airflow.sdk.exceptions import AirflowFailException
from dvc.utils.hydra import get_hydra_sweeps

from parity_lstm_checkout import (
    RUN_CONF,
    TASK_TIMEOUT,
    apply_params,
    checkout,
    commit_of,
    dvc,
    record_experiment,
    run,
    safe_name,
)

# An object of non-empty arrays, with at least one key, or a non-empty array of `dvc exp run --queue -S` values in DVC's
# own sweep syntax: one experiment from `set_params` alone is the pipeline DAG's run. No default: a run must say its
# grid, and a form whose grid is no JSON cannot fall back on one. Airflow checks a run's grid against this schema when
# the run is triggered, and refuses the run if it does not fit (each keyword below checks only its own type).
GRID = Param(
    type=["object", "array"],
    minProperties=1,
    additionalProperties={"type": "array", "minItems": 1},
    minItems=1,
    items={"type": "string"},
    description='{"train.seed": [0, 1, 2], ...}, or as `dvc exp run --queue -S`: ["train.seed=range(0,3)", ...]',
)


def combinations(grid: dict | list) -> list[list[str]]:
    """Each experiment's overrides: the product of an object's values, or what DVC queues for `-S` values (a study's
    grid of docs/results.md, as it is printed there)."""
    if isinstance(grid, list):
        return [sweep["params.yaml"] for sweep in get_hydra_sweeps({"params.yaml": grid})]
    names, values = list(grid), list(grid.values())
    return [
        [f"{name}={json.dumps(value)}" for name, value in zip(names, combination, strict=True)]
        for combination in itertools.product(*values)
    ]


@task
def plan(params=None) -> list[dict]:
    """Every combination of the grid as overrides, each checked against the params schema before any runs."""
    runs = [params["set_params"] + overrides for overrides in combinations(params["grid"])]
    with checkout(params["repo"], params["rev"], []) as work:
        defaults = (work / "params.yaml").read_text()
        for set_params in runs:
            (work / "params.yaml").write_text(defaults)
            apply_params(work, set_params)
        return [{"commit": commit_of(work), "set_params": set_params} for set_params in runs]


# A retry waits RETRY_DELAY after a failure (a pull or push that failed, a task that hung, a worker that died), twice as
# long after each further failure, MAX_RETRY_DELAY at most. An outage of the control plane or the broker spends none:
# dags/cluster/up makes the workers and the scheduler wait it out.
RETRIES, RETRY_DELAY, MAX_RETRY_DELAY = 5, timedelta(seconds=10), timedelta(minutes=3)
RETRYING = {
    "retries": RETRIES,
    "retry_delay": RETRY_DELAY,
    "retry_exponential_backoff": True,
    "max_retry_delay": MAX_RETRY_DELAY,
}


@task(**RETRYING)
def experiment(planned: dict, params=None, run_id=None, ti=None) -> str:
    with checkout(params["repo"], planned["commit"], planned["set_params"]) as work:
        return record_experiment(work, f"{safe_name(run_id)}-{ti.map_index}")


@task(trigger_rule=TriggerRule.ALL_DONE, **RETRYING)
def convergence(planned: list[dict], names: list[str], params=None, run_id=None) -> str:
    """The table of what succeeded, pushed to the branch sweeps/<run id>; then fail, not to be retried, if anything
    did not (retries are for the pulls and pushes)."""
    if not planned:
        raise AirflowFailException("no experiments: the plan failed, see its task")
    names = [name for name in names if name]
    if not names:  # `dvc exp pull` with no names would pull, and tabulate, every experiment of the commit
        raise AirflowFailException(f"all {len(planned)} experiments failed: see their tasks")
    branch = f"sweeps/{safe_name(run_id)}"
    with checkout(params["repo"], planned[0]["commit"], []) as work:
        dvc(work, "exp", "pull", "--no-cache", "origin", *names)
        (work / "exps.json").write_text(dvc(work, "exp", "show", "--json", data=True))
        table = run(work, sys.executable, "-m", "tools.summarise", "exps.json", *names, data=True)
        (work / "convergence.md").write_text(table)
        run(work, "git", "add", "convergence.md")
        run(work, "git", "commit", "--quiet", "-m", f"Sweep {run_id}: convergence", "-m", "\n".join(names))
        run(work, "git", "push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{branch}")
    print(f"the table is convergence.md on the branch {branch}")
    if len(names) < len(planned):
        raise AirflowFailException(f"{len(planned) - len(names)} of {len(planned)} experiments failed: see their tasks")
    return table


@dag(
    dag_id="parity_lstm_sweep",
    schedule=None,
    params={"grid": GRID, **RUN_CONF},
    default_args={"execution_timeout": TASK_TIMEOUT},
    tags=["parity-lstm"],
)
def parity_lstm_sweep():
    planned = plan()
    convergence(planned, experiment.expand(planned=planned))


parity_lstm_sweep()
