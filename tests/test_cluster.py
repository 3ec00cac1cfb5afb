"""The sweep DAG on a real cluster (dags/cluster/up): CeleryExecutor, PostgreSQL, Redis, two workers that share no
folder and reach the repository over git:// and the DVC remote over WebDAV. Tiny params; one worker is killed."""

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.request import urlopen

import pytest

from bench.cluster import WORKERS, Cluster, wait_until
from bench.scratch_repo import dvc, identify, make_scratch_repo, run
from tests.test_airflow import experiments
from tests.tiny_pipeline import TINY_PARAMS

pytestmark = pytest.mark.slow
SWEEP = "parity_lstm_sweep"
# Two params, the product of their values: 4 experiments, each a population of 2 members trained for 2 epochs.
GRID = {"train.seed": [3, 5], "train.learning_rate": [0.01, 0.02]}
SET_PARAMS = ["train.epochs=2", "train.population=2"]
# Seconds without a heartbeat before the scheduler fails a task (dags/cluster/up's default is 60).
HEARTBEAT_TIMEOUT = 20


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Cluster:
    """The cluster, serving a repository of the tiny pipeline with no DVC remote of its own: the workers' own
    setting (the cluster's WebDAV remote) applies."""
    repo = make_scratch_repo(tmp_path_factory.mktemp("cluster") / "repo", TINY_PARAMS)
    with Cluster.started(tmp_path_factory.mktemp("cluster"), repo, HEARTBEAT_TIMEOUT) as started:
        yield started


def experiment_refs(cluster: Cluster) -> list[str]:
    """The experiments the git server holds."""
    return run(cluster.folder, "git", "ls-remote", cluster.git_url, "refs/exps/*").split()[1::2]


def test_a_grid_that_is_not_an_object_of_arrays_is_refused_and_no_run_starts(cluster: Cluster):
    refused = cluster.trigger(SWEEP, "bad_grid", {"grid": {"train.seed": "35"}})
    assert refused.returncode != 0
    assert "Invalid input for param grid: '35' is not of type 'array'" in refused.stdout + refused.stderr
    assert cluster.run_state("bad_grid") is None


def test_a_grid_with_a_bad_value_fails_plan_in_one_line_and_no_experiment_runs(cluster: Cluster):
    assert cluster.trigger(SWEEP, "bad_value", {"grid": {"train.epochs": [2, 0]}}).returncode == 0
    assert cluster.wait_for_run("bad_value", 180) == "failed"
    states = {(ti["task_id"], ti["map_index"]): ti["state"] for ti in cluster.task_instances("bad_value")}
    assert states[("plan", -1)] == "failed"
    assert states[("experiment", -1)] == "upstream_failed" and len(states) == 3, states  # never expanded
    (_, log), *_ = cluster.task_logs("bad_value", "plan").values()
    assert "params.yaml: train.epochs = 0: Input should be greater than 0" in log.splitlines()
    assert not experiment_refs(cluster)


@dataclass(frozen=True)
class Sweep:
    run_id: str
    killed: dict  # the task instance whose worker was killed while it trained, as it was then
    killed_worker: int
    killed_at: float  # time.time()
    ui_log: tuple[int, list[str]]  # a map index worker1 ran, and its log's messages as the UI showed them then


def ui_log(cluster: Cluster, run_id: str, map_index: int, attempt: int) -> list[str]:
    """An experiment task's log messages through the API server, which fetches them from its worker's log server."""
    task = f"dags/{SWEEP}/dagRuns/{run_id}/taskInstances/experiment/logs/{attempt}?map_index={map_index}"
    with urlopen(f"http://127.0.0.1:{cluster.env['AIRFLOW__API__PORT']}/api/v2/{task}", timeout=60) as response:
        return [event.get("event", "") for event in json.load(response)["content"]]


@pytest.fixture(scope="module")
def sweep(cluster: Cluster) -> Sweep:
    """The 2 x 2 sweep, with one worker killed (SIGKILL, its whole session) in the middle of a training task, once
    both workers have finished an experiment."""
    run_id = "grid_2x2"
    conf = {"grid": GRID, "set_params": SET_PARAMS}
    assert cluster.trigger(SWEEP, run_id, conf).returncode == 0

    def progress() -> tuple[dict[int, tuple[int, int]], tuple[dict, int] | None]:
        """Worker -> an experiment it finished (map index, attempt); and an experiment training now, and its worker."""
        assert cluster.run_state(run_id) not in ("success", "failed"), "the run ended before a worker could be killed"
        finished, in_train = {}, None
        for ti in cluster.task_instances(run_id):
            if ti["task_id"] != "experiment":
                continue
            for attempt, (worker, log) in cluster.task_logs(run_id, "experiment", ti["map_index"]).items():
                if "Ran experiment" in log:
                    finished[worker] = ti["map_index"], attempt
                elif ti["state"] == "running" and "Running stage 'train'" in log and "stage 'evaluate'" not in log:
                    in_train = ti, worker
        return finished, in_train

    # While worker1 lives (its log server with it), the UI's view of a log it wrote.
    index, attempt = wait_until(lambda: progress()[0].get(1), 300, "an experiment finished by worker1", 0.2)
    seen_in_ui = index, ui_log(cluster, run_id, index, attempt)

    def training() -> tuple[dict, int] | None:
        finished, in_train = progress()
        return in_train if set(finished) == set(WORKERS) else None

    killed, worker = wait_until(training, 300, "an experiment training after each worker finished one", 0.2)
    cluster.kill_worker(worker)
    killed_at = time.time()
    assert not cluster.worker_processes(worker)
    assert cluster.wait_for_run(run_id, 400) == "success"
    return Sweep(run_id, killed, worker, killed_at, seen_in_ui)


def test_the_task_of_a_killed_worker_is_retried_on_the_other_and_every_experiment_lands_once(
    cluster: Cluster, sweep: Sweep
):
    tasks = {ti["map_index"]: ti for ti in cluster.task_instances(sweep.run_id) if ti["task_id"] == "experiment"}
    assert sorted(tasks) == [0, 1, 2, 3] and all(ti["state"] == "success" for ti in tasks.values())
    retried = tasks[sweep.killed["map_index"]]
    assert retried["try_number"] == sweep.killed["try_number"] + 1
    logs = cluster.task_logs(sweep.run_id, "experiment", sweep.killed["map_index"])
    (killed_worker, killed_log) = logs[sweep.killed["try_number"]]
    (retry_worker, retry_log) = logs[retried["try_number"]]
    # The log of the killed try holds the command's output up to its death, in the train stage: streamed as it
    # came, not kept until the command's end.
    assert killed_worker == sweep.killed_worker and "Running stage 'train'" in killed_log
    assert "Running stage 'evaluate'" not in killed_log
    assert retry_worker != sweep.killed_worker and "Ran experiment" in retry_log
    waited = retried["start_date"].timestamp() - sweep.killed_at
    print(f"worker{killed_worker} killed; the retry started on worker{retry_worker} {waited:.0f} s later")

    names = sorted(experiment_refs(cluster))
    assert [name.rsplit("/", 1)[-1] for name in names] == [f"{sweep.run_id}-{index}" for index in range(4)]


def test_a_fresh_clone_shows_and_pulls_every_experiment_and_the_sweeps_table(
    cluster: Cluster, sweep: Sweep, tmp_path: Path
):
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", cluster.git_url, str(clone))
    identify(clone)
    dvc(clone, "remote", "add", "--local", "--default", "cluster", cluster.dvc_remote)
    dvc(clone, "exp", "pull", "origin", *(f"{sweep.run_id}-{index}" for index in range(4)))
    swept = experiments(clone)
    assert sorted(swept) == [f"{sweep.run_id}-{index}" for index in range(4)]
    grid_params = sorted((params["train"]["seed"], params["train"]["learning_rate"]) for params in swept.values())
    assert grid_params == [(3, 0.01), (3, 0.02), (5, 0.01), (5, 0.02)]
    assert all((params["train"]["epochs"], params["train"]["population"]) == (2, 2) for params in swept.values())

    # The table: the convergence task's result, and the same on the branch sweeps/<run id>.
    (returned,) = cluster.query("select value from xcom where run_id = %s and task_id = 'convergence'", sweep.run_id)
    run(clone, "git", "fetch", "-q", "origin", f"sweeps/{sweep.run_id}")
    table = run(clone, "git", "show", "FETCH_HEAD:convergence.md")
    assert table == returned[0]
    assert re.search(r"^\| train\.learning_rate=0\.01 \| 2 \| \d/4 \|", table, re.M), table

    # Each experiment's data and model come whole from the remote.
    for name in swept:
        dvc(clone, "exp", "apply", name)
        dvc(clone, "pull")
        assert "Data and pipelines are up to date" in dvc(clone, "status")


def test_the_ui_showed_a_task_log_from_the_worker_that_ran_it(sweep: Sweep):
    """The API server fetches a log from the worker's log server: worker1's (both workers have this machine's
    hostname, and the API server asks one port, worker1's)."""
    index, events = sweep.ui_log
    assert f"Ran experiment(s): {sweep.run_id}-{index}" in events, events
