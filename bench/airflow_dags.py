"""Part `airflow`: AIRFLOW_SEEDS default-size experiments (seeds 0 on) two at a time, by `dvc queue start -j 2` in a
scratch repo whose default run is done and by the `parity_lstm_sweep` DAG on the cluster of dags/cluster/up (Celery,
two workers) after `parity_lstm_pipeline` has done the default run: wall time from queueing or triggering to the last
result. Then other seeds while the API server, Redis and PostgreSQL are each down for OUTAGE_S seconds in turn: the
delay over the quiet sweep and the experiments trained more than once. Last, a worker killed while it trains: how long
until the retry starts.

    python -m bench --parts airflow

(Not `bench/airflow.py`: a module of that name could shadow the `airflow` package.)
"""

import time
from pathlib import Path

from bench.harness import default_run_repo
from bench.studies import run_grid
from devkit.cluster import Cluster, wait_until
from devkit.scratch_repo import make_scratch_repo

AIRFLOW_SEEDS = 8
SWEEP_DAG = "parity_lstm_sweep"
OUTAGE_S = 30


def timed_run(cluster: Cluster, dag_id: str, run_id: str, conf: dict) -> float:
    """Seconds from triggering a DAG run to its end, which must be a success."""
    started = time.perf_counter()
    assert cluster.trigger(dag_id, run_id, conf).returncode == 0
    assert cluster.wait_for_run(run_id, 3600) == "success", f"{dag_id} run {run_id} failed: see {cluster.folder}"
    elapsed = time.perf_counter() - started
    print(f"{dag_id} {run_id}: {elapsed:.0f} s", flush=True)
    return elapsed


def outages(cluster: Cluster) -> dict:
    """The sweep of seeds AIRFLOW_SEEDS to 2 * AIRFLOW_SEEDS - 1 with the API server, Redis and PostgreSQL each down for
    OUTAGE_S seconds once the first experiment trains: its wall time, and the trainings each experiment's tries
    finished (a finished training is followed by `evaluate`)."""
    run_id = "outages"
    started = time.perf_counter()
    grid = {"grid": {"train.seed": list(range(AIRFLOW_SEEDS, 2 * AIRFLOW_SEEDS))}}
    assert cluster.trigger(SWEEP_DAG, run_id, grid).returncode == 0

    def training() -> bool:
        logs = (cluster.task_logs(run_id, "experiment", index).values() for index in range(AIRFLOW_SEEDS))
        return any("Running stage 'train'" in log for tries in logs for _, log in tries)

    wait_until(training, 600, "an experiment training", 0.2)
    cluster.restart_each(OUTAGE_S)
    assert cluster.wait_for_run(run_id, 3600) == "success"
    wall_s = time.perf_counter() - started
    trainings = [
        sum("Running stage 'evaluate'" in log for _, log in cluster.task_logs(run_id, "experiment", index).values())
        for index in range(AIRFLOW_SEEDS)
    ]
    tries = [ti["try_number"] for ti in cluster.task_instances(run_id) if ti["task_id"] == "experiment"]
    print(f"{SWEEP_DAG} {run_id}: {wall_s:.0f} s, trainings {trainings}, tries {tries}", flush=True)
    return {"outage_s": OUTAGE_S, "wall_s": wall_s, "trainings": trainings, "tries": tries}


def worker_death(cluster: Cluster) -> dict:
    """Kill the worker of a one-experiment sweep once its train stage runs; seconds to the retry's start and end."""
    run_id = "worker_death"
    assert cluster.trigger(SWEEP_DAG, run_id, {"grid": {"train.seed": [AIRFLOW_SEEDS]}}).returncode == 0

    def training_worker() -> int | None:
        for worker, log in cluster.task_logs(run_id, "experiment", 0).values():
            if "Running stage 'train'" in log:
                return worker
        return None

    worker = wait_until(training_worker, 600, "the experiment training", 0.2)
    cluster.kill_worker(worker)
    killed_at = time.time()
    assert cluster.wait_for_run(run_id, 3600) == "success"
    (retried,) = [ti for ti in cluster.task_instances(run_id) if ti["task_id"] == "experiment"]
    result = {
        "heartbeat_timeout_s": int(cluster.env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"]),
        "to_retry_start_s": retried["start_date"].timestamp() - killed_at,
        "to_retry_end_s": retried["end_date"].timestamp() - killed_at,
    }
    print(f"worker{worker} killed while training: the retry started {result['to_retry_start_s']:.0f} s later")
    return result


def measure(scratch: Path) -> dict:
    queue_repo = default_run_repo(scratch / "queue")
    queued_run = run_grid(queue_repo, f"-S 'train.seed=range(0,{AIRFLOW_SEEDS})'", jobs=2)
    queue_s = queued_run["wall_s"]

    started = time.perf_counter()
    with Cluster.started(scratch / "cluster", make_scratch_repo(scratch / "cluster-repo")) as cluster:
        startup_s = time.perf_counter() - started
        pipeline_s = timed_run(cluster, "parity_lstm_pipeline", "default_run", {})
        grid = {"grid": {"train.seed": list(range(AIRFLOW_SEEDS))}}
        cluster_s = timed_run(cluster, SWEEP_DAG, "seeds", grid)
        faulted = outages(cluster)
        death = worker_death(cluster)

    return {
        "queue_s": queue_s,
        "cluster_s": cluster_s,
        "startup_s": startup_s,
        "pipeline_s": pipeline_s,
        "outages": faulted,
        "worker_death": death,
    }


def table(result: dict) -> str:
    """The sweep's wall times, quiet and under faults, with what a worker's death costs."""
    death, faults = result["worker_death"], result["outages"]
    return "\n".join(
        [
            f"| {AIRFLOW_SEEDS} default-size experiments, 2 at a time | wall |",
            "| --- | --- |",
            f"| `dvc queue start -j 2` | {result['queue_s']:.0f} s |",
            f"| `parity_lstm_sweep` on `dags/cluster/up` (2 Celery workers) | {result['cluster_s']:.0f} s |",
            f"| the same, other seeds, the API server, Redis and PostgreSQL each down {faults['outage_s']} s "
            f"(trainings per experiment: {', '.join(map(str, faults['trainings']))}) | {faults['wall_s']:.0f} s |",
            f"| `dags/cluster/up` | {result['startup_s']:.0f} s |",
            f"| a worker killed mid-training: until its task's retry starts | {death['to_retry_start_s']:.0f} s |",
        ]
    )
