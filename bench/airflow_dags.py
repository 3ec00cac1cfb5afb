"""Part `airflow`: the cells study of docs/results.md (bench/studies.py) by `dvc queue start -j 2` in a scratch repo
whose default run is done, then by the `parity_lstm_sweep` DAG on the cluster of dags/cluster/up (Celery, two
workers) after `parity_lstm_pipeline` has done the default run; then the same on a fresh cluster with each fault of
FAULTS in turn, each once an experiment trains. Each run: its wall time, the trainings each experiment's tries
finished, its tries, and whether its table is the queue's.

    python -m bench --parts airflow

(Not `bench/airflow.py`: a module of that name could shadow the `airflow` package.)
"""

import os
import shlex
import signal
import time
from pathlib import Path

from bench.studies import STUDIES, run_study
from devkit.cluster import FINISHED, Cluster, wait_until
from devkit.scratch_repo import make_scratch_repo
from devkit.settings import environment
from tools import summarise

STUDY = "cells"
SWEEP_DAG = "parity_lstm_sweep"
OUTAGE_S = 60
# Seconds any task may run: past the study's longest experiment held up by an outage. A stopped task costs this.
TASK_TIMEOUT_S = 600
DOWN = {"api-server": "the API server", "postgres": "PostgreSQL", "redis": "Redis"}
FAULTS = {"stop": "a task stopped (SIGSTOP)", "worker": "a worker killed (SIGKILL)"} | {
    part: f"{name} down {OUTAGE_S} s" for part, name in DOWN.items()
}


def inject(cluster: Cluster, run_id: str, fault: str) -> None:
    """One fault of FAULTS, once an experiment of the run trains."""

    def trainings() -> list:
        assert cluster.run_state(run_id) not in FINISHED, f"{run_id} ended before {FAULTS[fault]}"
        return cluster.trainings()

    worker, process = wait_until(trainings, 1800, "an experiment training", 0.5)[0]
    print(f"{FAULTS[fault]}, worker{worker} training", flush=True)
    if fault == "stop":
        os.killpg(os.getpgid(process.pid), signal.SIGSTOP)
    elif fault == "worker":
        cluster.kill_worker(worker)
    else:
        with cluster.down(fault):
            time.sleep(OUTAGE_S)


def study_run(cluster: Cluster, run_id: str, faults: tuple[str, ...] = ()) -> dict:
    """The study through the sweep DAG, with `faults` in turn: wall time, trainings and tries per experiment, table."""
    grid = shlex.split(STUDIES[STUDY].grids[0])[1::2]  # the values of `-S value ...`
    started = time.perf_counter()
    assert cluster.trigger(SWEEP_DAG, run_id, {"grid": grid}).returncode == 0
    for fault in faults:
        inject(cluster, run_id, fault)
    assert cluster.wait_for_run(run_id, 4 * 3600) == "success", f"{run_id} failed: see {cluster.folder}"
    wall_s = time.perf_counter() - started
    experiments = [ti for ti in cluster.task_instances(run_id) if ti["task_id"] == "experiment"]
    trainings = [cluster.trainings_finished(run_id, ti["map_index"]) for ti in experiments]
    (returned,) = cluster.query("select value from xcom where run_id = %s and task_id = 'convergence'", run_id)
    result = {"faults": list(faults), "wall_s": wall_s, "trainings": trainings, "table": returned[0]}
    result["tries"] = {ti["task_id"]: ti["try_number"] for ti in cluster.task_instances(run_id) if ti["map_index"] < 0}
    result["tries"]["experiment"] = [ti["try_number"] for ti in experiments]
    print(f"{SWEEP_DAG} {run_id}: {wall_s:.0f} s, trainings {trainings}, tries {result['tries']}", flush=True)
    return result


def measure(scratch: Path) -> dict:
    queued = run_study(STUDY, scratch / "queue", jobs=2)
    queue_table = "\n\n".join(filter(None, [summarise.table(queued["rows"]), summarise.agreement(queued["rows"])]))

    # Each run on a cluster of its own: on the same one, the second would restore every stage from the run-cache.
    runs = [cluster_run(scratch / "quiet", ()), cluster_run(scratch / "faults", tuple(FAULTS))]
    for run in runs:
        run["same_table"] = run.pop("table").strip() == queue_table
    return {
        "queue_s": queued["wall_s"],
        "experiments": len(queued["grids"][0]["experiments"]),
        "runs": runs,
        "task_timeout_s": TASK_TIMEOUT_S,
    }


def cluster_run(scratch: Path, faults: tuple[str, ...]) -> dict:
    """dags/cluster/up, `parity_lstm_pipeline` for the default run, then the study with `faults`; the time `up` took."""
    started = time.perf_counter()
    # Each worker's kernels on its share of the cores, as the queue's workers run them (bench/studies.py).
    threads = str(max(1, (os.cpu_count() or 1) // 2))
    with (
        environment(NUMBA_NUM_THREADS=threads),
        Cluster.started(scratch / "cluster", make_scratch_repo(scratch / "repo"), task=TASK_TIMEOUT_S) as cluster,
    ):
        startup_s = time.perf_counter() - started
        assert cluster.trigger("parity_lstm_pipeline", "default_run", {}).returncode == 0
        assert cluster.wait_for_run("default_run", 1800) == "success"
        run = study_run(cluster, "faults" if faults else "quiet", faults)
        run["heartbeat_timeout_s"] = int(cluster.env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"])
    return run | {"startup_s": startup_s}


def table(result: dict) -> str:
    """The study's wall times, by the queue and on the cluster, quiet and under faults."""
    quiet = result["runs"][0]["wall_s"]
    rows = [
        f"| {result['experiments']} experiments, 2 at a time | wall | over quiet | trainings | tries | table |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| `dvc queue start -j 2` | {result['queue_s']:.0f} s | | 1 each | | |",
    ]
    for run in result["runs"]:
        what = "; ".join(FAULTS[fault] for fault in run["faults"]) or "quiet"
        trainings = "1 each" if set(run["trainings"]) == {1} else ", ".join(map(str, run["trainings"]))
        tries = sum(run["tries"]["experiment"]) + run["tries"]["plan"] + run["tries"]["convergence"]
        tasks = len(run["tries"]["experiment"]) + 2
        same = "the queue's" if run["same_table"] else "**another**"
        rows.append(
            f"| `{SWEEP_DAG}` on `dags/cluster/up`, {what} | {run['wall_s']:.0f} s | {run['wall_s'] - quiet:+.0f} s "
            f"| {trainings} | {tries} for {tasks} tasks | {same} |"
        )
    rows.append(f"| `dags/cluster/up` | {result['runs'][0]['startup_s']:.0f} s | | | | |")
    return "\n".join(rows)
