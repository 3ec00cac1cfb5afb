"""A sweep as an Airflow DAG: one task per experiment of a grid, then the convergence table of them all.

    airflow dags test parity_lstm_sweep -c '{"grid": {"train.seed": [0, 1]}, "set_params": ["train.epochs=1"]}'

Run conf: `grid` ({"param": [values, ...]}: one experiment per combination), and `set_params`, `repo`, `rev`
as for the pipeline DAG (parity_lstm_checkout.RUN_CONF). Each experiment is `dvc exp run` in a checkout of its
own, pushed to the repository (`dvc exp push`); a failed one fails its own task (retried) and no other. The last
task prints `python -m stages.convergence` for the sweep's experiments and writes it to
$AIRFLOW_HOME/parity_lstm_sweeps/<run id>.md.
"""

import itertools
import json
import os
import re
import sys
from datetime import timedelta
from pathlib import Path

from airflow.sdk import Param, TriggerRule, dag, task

from parity_lstm_checkout import RUN_CONF, CommandFailed, apply_params, checkout, commit_of, dvc, record_experiment, run


@task
def plan(params=None) -> list[dict]:
    """Every combination of the grid as overrides, each checked against the params schema before any runs."""
    names, values = list(params["grid"]), list(params["grid"].values())
    runs = [
        params["set_params"] + [f"{name}={json.dumps(value)}" for name, value in zip(names, combination, strict=True)]
        for combination in itertools.product(*values)
    ]
    with checkout(params["repo"], params["rev"], []) as work:
        defaults = (work / "params.yaml").read_text()
        for set_params in runs:
            (work / "params.yaml").write_text(defaults)
            apply_params(work, set_params)
        return [{"commit": commit_of(work), "set_params": set_params} for set_params in runs]


@task(retries=2, retry_delay=timedelta(seconds=30))
def experiment(planned: dict, params=None) -> str:
    with checkout(params["repo"], planned["commit"], planned["set_params"]) as work:
        return record_experiment(work)


@task(trigger_rule=TriggerRule.ALL_DONE)  # summarise what succeeded, then fail if anything did not
def convergence(planned: list[dict], names: list[str], params=None, run_id=None) -> str:
    if not planned:
        raise CommandFailed("no experiments: the plan failed, see its task")
    names = [name for name in names if name]
    with checkout(params["repo"], planned[0]["commit"], []) as work:
        dvc(work, "exp", "pull", "--no-cache", "origin", *names)
        (work / "exps.json").write_text(dvc(work, "exp", "show", "--json"))
        table = run(work, sys.executable, "-m", "stages.convergence", "exps.json", *names)
    home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
    file_name = re.sub(r"[^\w.-]", "_", run_id) + ".md"
    table_file = home / "parity_lstm_sweeps" / file_name
    table_file.parent.mkdir(parents=True, exist_ok=True)
    table_file.write_text(table)
    print(f"written to {table_file}")
    if len(names) < len(planned):
        raise CommandFailed(f"{len(planned) - len(names)} of {len(planned)} experiments failed: see their tasks")
    return table


@dag(
    dag_id="parity_lstm_sweep",
    schedule=None,
    params={"grid": Param({}, type="object", description='{"train.seed": [0, 1, 2], ...}'), **RUN_CONF},
    tags=["parity-lstm"],
)
def parity_lstm_sweep():
    planned = plan()
    convergence(planned, experiment.expand(planned=planned))


parity_lstm_sweep()
