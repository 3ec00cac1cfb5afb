"""Part `airflow`: one grid of AIRFLOW_SEEDS default-size experiments (seeds 0 to AIRFLOW_SEEDS - 1) run two ways,
each in a scratch repo of its own whose default run is done: `dvc queue start -j 2`, then the `parity_lstm_sweep`
DAG under `airflow standalone` with 2 parallel tasks (LocalExecutor, SQLite); wall time from queueing or triggering
to the last result.

    python -m bench --parts airflow

(Not `bench/airflow.py`: a module of that name could shadow the `airflow` package.)
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import default_run_repo, time_queued_seeds
from bench.scratch_repo import dvc, pipeline_environment

AIRFLOW_SEEDS = 8
SWEEP_DAG = "parity_lstm_sweep"


def airflow_environment(home: Path, dags: Path) -> dict:
    return pipeline_environment() | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "2",  # as `dvc queue start -j 2`
    }


def airflow_cli(env: dict, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"airflow {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def sweep_state(env: dict) -> str | None:
    """The state of the one run of the sweep DAG, once Airflow has one."""
    listed = airflow_cli(env, "dags", "list-runs", SWEEP_DAG, "-o", "json").splitlines()
    runs = [json.loads(line) for line in listed if line.startswith("[{")]  # the JSON line among Airflow's log lines
    return runs[0][0]["state"] if runs else None


def time_sweep(env: dict, log_file: Path) -> tuple[float, float]:
    """Seconds `airflow standalone` takes to register the sweep DAG, and then from triggering the grid to the end
    of its run, which must succeed."""
    started = time.perf_counter()
    with open(log_file, "w") as log:
        command = [sys.executable, "-m", "airflow", "standalone"]
        standalone = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
        try:
            # Wait until the DAG processor has registered the DAG, then trigger the sweep and wait for its end.
            while SWEEP_DAG not in airflow_cli(env, "dags", "list"):
                time.sleep(2)
            startup_s = time.perf_counter() - started
            airflow_cli(env, "dags", "unpause", SWEEP_DAG)
            started = time.perf_counter()
            grid = {"grid": {"train.seed": list(range(AIRFLOW_SEEDS))}}
            airflow_cli(env, "dags", "trigger", SWEEP_DAG, "-c", json.dumps(grid))
            while (state := sweep_state(env)) not in ("success", "failed"):
                time.sleep(5)
            airflow_s = time.perf_counter() - started
        finally:  # the scheduler, api-server, DAG processor, triggerer and their workers
            os.killpg(standalone.pid, signal.SIGTERM)
            standalone.wait()
    assert state == "success", f"the sweep DAG run {state}: see {log_file}"
    return startup_s, airflow_s


def measure(scratch: Path) -> dict:
    """The same grid through DVC's queue and through Airflow, both starting from a repo whose data stages ran."""
    from stages.convergence import summarise, table

    def swept(repo: Path) -> str:
        """The convergence table of the repo's experiments."""
        names = set(dvc(repo, "exp", "ls", "--name-only", stderr=False).split())
        return table(summarise(json.loads(dvc(repo, "exp", "show", "--json", stderr=False)), names=names))

    # One repo each: in one repo, the second method would restore the first one's runs from the run-cache.
    queue_repo, repo = default_run_repo(scratch / "queue"), default_run_repo(scratch / "airflow")
    queue_s = time_queued_seeds(queue_repo, AIRFLOW_SEEDS)

    env = airflow_environment(scratch / "airflow-home", repo / "dags")
    airflow_cli(env, "db", "migrate")  # before the scheduler starts, so that the CLI can read the database at once
    startup_s, airflow_s = time_sweep(env, scratch / "airflow-standalone.log")
    print(f"the same grid through Airflow: {airflow_s:.0f} s (+ {startup_s:.0f} s to start it)", flush=True)
    lines = [
        f"| {AIRFLOW_SEEDS} default-size experiments (seeds 0-{AIRFLOW_SEEDS - 1}), 2 at a time | wall time |",
        "| --- | --- |",
        f"| `dvc exp run --queue` + `dvc queue start -j 2` | {queue_s:.0f} s |",
        f"| `{SWEEP_DAG}` DAG, `airflow standalone`, parallelism 2 | {airflow_s:.0f} s |",
        "",
        f"`airflow standalone` took {startup_s:.0f} s to start and register the DAG (not counted above).",
        "",
        "Queued runs:",
        "",
        swept(queue_repo),
        "",
        "Airflow runs:",
        "",
        swept(repo),
    ]
    return {"queue_s": queue_s, "airflow_s": airflow_s, "startup_s": startup_s, "table": "\n".join(lines)}
