"""The sweep DAG on a real cluster (dags/cluster/up): CeleryExecutor, PostgreSQL, Redis, two workers that share no
folder and reach the repository over git:// and the DVC remote over WebDAV. Tiny params. In one sweep a worker is
killed; in another a task is stopped (SIGSTOP) and the API server, Redis and PostgreSQL are each down for a while."""

import os
import re
import signal
import sys
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError

import psutil
import pytest
import yaml

from devkit.cluster import Cluster, wait_until
from devkit.scratch_repo import REPO, dvc, identify, make_scratch_repo, run
from tests.test_airflow import experiments
from tests.tiny_pipeline import TINY_PARAMS

pytestmark = pytest.mark.slow
SWEEP = "parity_lstm_sweep"
# Two params, the product of their values: 4 experiments, each a population of 2 members trained for 2 epochs.
GRID = {"train.seed": [3, 5], "train.learning_rate": [0.01, 0.02]}
SET_PARAMS = ["train.epochs=2", "train.population=2"]
# Seconds without a heartbeat before the scheduler fails a task (dags/cluster/up's default is 180), which an outage of
# the control plane must stay under, and seconds any task may run (its default is 6 hours): an experiment here takes
# well under a minute, and one held up by an outage a minute more.
HEARTBEAT_TIMEOUT, TASK_TIMEOUT = 120, 150


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Cluster:
    """The cluster, serving a repository of the tiny pipeline with no DVC remote of its own: the workers' own
    setting (the cluster's WebDAV remote) applies."""
    repo = make_scratch_repo(tmp_path_factory.mktemp("cluster") / "repo", TINY_PARAMS)
    folder = tmp_path_factory.mktemp("cluster")
    with Cluster.started(folder, repo, heartbeat=HEARTBEAT_TIMEOUT, task=TASK_TIMEOUT) as started:
        yield started


def test_a_grid_that_is_not_an_object_of_arrays_is_refused_and_no_run_starts(cluster: Cluster):
    refused = cluster.trigger(SWEEP, "bad_grid", {"grid": {"train.seed": "35"}})
    assert refused.returncode != 0
    assert "Invalid input for param grid: '35' is not of type 'array'" in refused.stdout + refused.stderr
    assert cluster.run_state("bad_grid") is None


@pytest.mark.parametrize("run_id, conf", [("no_grid", {}), ("empty_grid", {"grid": {}}), ("null_grid", {"grid": None})])
def test_a_sweep_without_a_grid_is_refused_from_the_cli_and_the_ui_and_no_run_starts(
    cluster: Cluster, run_id: str, conf: dict
):
    """A grid the user did not mean: none, `{}`, or what the UI's trigger form sends when its JSON does not parse."""
    refused = cluster.trigger(SWEEP, run_id, conf)
    assert refused.returncode != 0 and "Invalid input for param grid" in refused.stdout + refused.stderr
    with pytest.raises(HTTPError) as by_the_ui:
        cluster.api(f"dags/{SWEEP}/dagRuns", {"dag_run_id": f"{run_id}_ui", "logical_date": None, "conf": conf})
    with by_the_ui.value as refusal:  # it holds the connection
        assert refusal.code == 400 and "grid" in refusal.read().decode(), refusal.code
    assert cluster.run_state(run_id) is None and cluster.run_state(f"{run_id}_ui") is None


def test_a_grid_with_an_unknown_key_fails_plan_in_one_line_naming_the_nearest(cluster: Cluster):
    assert cluster.trigger(SWEEP, "bad_key", {"grid": {"train.learning_rat": [0.1]}}).returncode == 0
    assert cluster.wait_for_run("bad_key", 180) == "failed"
    (_, log), *_ = cluster.task_logs("bad_key", "plan").values()
    nearest = "train.learning_rat is not a param; the nearest: train.learning_rate, train.units, train.engine"
    assert nearest in log.splitlines()
    assert not cluster.experiment_refs()


def test_a_grid_with_a_bad_value_fails_plan_in_one_line_and_no_experiment_runs(cluster: Cluster):
    assert cluster.trigger(SWEEP, "bad_value", {"grid": {"train.epochs": [2, 0]}}).returncode == 0
    assert cluster.wait_for_run("bad_value", 180) == "failed"
    states = {(ti["task_id"], ti["map_index"]): ti["state"] for ti in cluster.task_instances("bad_value")}
    assert states[("plan", -1)] == "failed"
    assert states[("experiment", -1)] == "upstream_failed" and len(states) == 3, states  # never expanded
    (_, log), *_ = cluster.task_logs("bad_value", "plan").values()
    assert "params.yaml: train.epochs = 0: Input should be greater than 0" in log.splitlines()
    assert not cluster.experiment_refs()


@dataclass(frozen=True)
class Sweep:
    run_id: str
    broker_back: float  # time.time() when Redis was started again
    killed: dict  # the task instance killed after its push, as it was then
    killed_worker: int  # the worker it ran on
    ui_log: tuple[int, list[str]]  # a map index worker1 ran, and its log's messages as the UI showed them after the run
    wall_s: float  # from its trigger to its end


BROKER_OUTAGE_S = 30


def ui_log(cluster: Cluster, run_id: str, map_index: int, attempt: int) -> list[str]:
    """An experiment task's log messages through the API server, which fetches them from its worker's log server."""
    task = f"dags/{SWEEP}/dagRuns/{run_id}/taskInstances/experiment/logs/{attempt}?map_index={map_index}"
    return [event.get("event", "") for event in cluster.api(task)["content"]]


def dvc_command(process: psutil.Process, *args: str) -> bool:
    """Whether `process` is `python -m dvc ARGS...`."""
    with suppress(psutil.Error):
        return process.cmdline()[1 : 3 + len(args)] == ["-m", "dvc", *args]
    return False


def stop_after_its_push(cluster: Cluster, worker: int) -> tuple[str, psutil.Process]:
    """Once `worker` runs an experiment, SIGSTOP its task process as its `dvc exp push` starts, and return once that
    push has ended: the task is frozen the moment after its experiment's ref reached the repository. The experiment's
    name, and the task process."""
    (running,) = wait_until(
        lambda: [process for process in cluster.worker_processes(worker) if dvc_command(process, "exp", "run")],
        300,
        f"an experiment running on worker{worker}",
        0.2,
    )
    task = running.parent()
    (push,) = wait_until(
        lambda: [child for child in task.children() if dvc_command(child, "exp", "push")], 300, "its push", 0.01
    )
    task.suspend()
    name = push.cmdline()[-1]
    wait_until(lambda: not push.is_running() or push.status() == psutil.STATUS_ZOMBIE, 120, "the push ended", 0.1)
    return name, task


@pytest.fixture(scope="module")
def sweep(cluster: Cluster) -> Sweep:
    """The 2 x 2 sweep, triggered while Redis is down, which comes back BROKER_OUTAGE_S later; once worker1 has finished
    an experiment, a task of worker2 is frozen after its push and killed (SIGKILL) as worker2 stops, which is kept
    down until the task's retry has started on worker1."""
    run_id = "grid_2x2"
    started = time.monotonic()
    conf = {"grid": GRID, "set_params": SET_PARAMS}
    with cluster.down("redis"):
        assert cluster.trigger(SWEEP, run_id, conf).returncode == 0
        time.sleep(BROKER_OUTAGE_S)
    broker_back = time.time()

    def finished_by_worker1() -> tuple[int, int] | None:
        """An experiment worker1 finished: its map index and attempt."""
        for ti in cluster.task_instances(run_id):
            for attempt, (worker, log) in cluster.task_logs(run_id, "experiment", ti["map_index"]).items():
                if ti["task_id"] == "experiment" and worker == 1 and "Ran experiment" in log:
                    return ti["map_index"], attempt
        return None

    wait_until(finished_by_worker1, 300, "an experiment finished by worker1", 0.2)
    pushed, task = stop_after_its_push(cluster, 2)
    assert pushed in experiments_of(cluster, run_id)
    (killed,) = [ti for ti in cluster.task_instances(run_id) if f"{run_id}-{ti['map_index']}" == pushed]
    # worker2 takes no more tasks (a warm shutdown, which waits for its running one); then the frozen task is killed:
    # its supervisor reports it failed at once, and its retry can only go to worker1.
    shutdowns = (cluster.folder / "logs/worker2.log").read_text().count("Warm shutdown")
    stopping = threading.Thread(target=cluster.supervised, args=("stop", "worker2"))
    stopping.start()
    wait_until(
        lambda: (cluster.folder / "logs/worker2.log").read_text().count("Warm shutdown") > shutdowns,
        60,
        "worker2 shutting down",
    )
    task.kill()
    stopping.join()

    def retried() -> bool:
        (now,) = [ti for ti in cluster.task_instances(run_id) if ti["map_index"] == killed["map_index"]]
        return now["try_number"] > killed["try_number"] and now["state"] in ("running", "success")

    wait_until(retried, 300, "the killed task's retry started", 1)
    cluster.supervised("start", "worker2")
    assert cluster.wait_for_run(run_id, 400) == "success"
    # The UI's view of a log worker1 wrote (the API server asks worker1's log server), read once its task has ended:
    # the log server declares a file's length, then sends what it holds, so a log still growing can fail to come.
    index, attempt = finished_by_worker1()
    seen_in_ui = index, ui_log(cluster, run_id, index, attempt)
    return Sweep(run_id, broker_back, killed, 2, seen_in_ui, time.monotonic() - started)


def test_a_sweep_triggered_while_the_broker_is_down_fails_nothing_and_uses_no_retry(cluster: Cluster, sweep: Sweep):
    """The scheduler's sends to Redis are refused until it is back, and sent again then: `plan` starts within a
    minute of it, and no task but the one killed has a second try."""
    tries = {(ti["task_id"], ti["map_index"]): ti["try_number"] for ti in cluster.task_instances(sweep.run_id)}
    assert tries.pop(("experiment", sweep.killed["map_index"])) == 2
    assert set(tries.values()) == {1}, tries
    (plan,) = [ti for ti in cluster.task_instances(sweep.run_id) if ti["task_id"] == "plan"]
    print(f"plan started {plan['start_date'].timestamp() - sweep.broker_back:.0f} s after Redis came back")
    assert plan["start_date"].timestamp() - sweep.broker_back < 60
    assert "Celery Task Timeout Error" in (cluster.folder / "logs/scheduler.log").read_text()  # it was refused


def test_a_task_killed_after_its_push_is_kept_by_its_retry_on_the_other_worker_which_trains_nothing(
    cluster: Cluster, sweep: Sweep
):
    tasks = {ti["map_index"]: ti for ti in cluster.task_instances(sweep.run_id) if ti["task_id"] == "experiment"}
    assert sorted(tasks) == [0, 1, 2, 3] and all(ti["state"] == "success" for ti in tasks.values())
    retried = tasks[sweep.killed["map_index"]]
    logs = cluster.task_logs(sweep.run_id, "experiment", sweep.killed["map_index"])
    (killed_worker, killed_log) = logs[sweep.killed["try_number"]]
    (retry_worker, retry_log) = logs[retried["try_number"]]
    assert killed_worker == sweep.killed_worker and "exp push" in killed_log
    assert retry_worker != killed_worker
    assert "kept, not run again" in retry_log and "Running stage" not in retry_log
    assert f"worker{killed_worker}" in cluster.supervised("status") and "STOPPED" not in cluster.supervised("status")
    assert experiments_of(cluster, sweep.run_id) == [f"{sweep.run_id}-{index}" for index in range(4)]


def experiments_of(cluster: Cluster, run_id: str) -> list[str]:
    """The names of a run's experiments the git server holds."""
    names = [ref.rsplit("/", 1)[-1] for ref in cluster.experiment_refs()]
    return sorted(name for name in names if name.startswith(f"{run_id}-"))


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
    # Per learning rate: 4 members (2 runs of 2), and the selected model of each of the 2 runs.
    assert re.search(r"^\| train\.learning_rate=0\.01 \| \d/4 \(.*\| \d/2 \([^|]*\| \d/2 \([^|]*\|$", table, re.M), (
        table
    )

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


FAULT_SEEDS = [21, 22, 23, 24, 25]
# Experiments that train for tens of seconds (2 members on tiny data, 2,000 epochs): long enough to be caught training.
FAULT_PARAMS = ["train.epochs=2000", "train.population=2"]
CONTROL_PLANE = ("api-server", "scheduler", "postgres")
OUTAGE_S = 60  # how long each part of the control plane is down


@dataclass(frozen=True)
class FaultedSweep:
    run_id: str
    stopped: dict  # the task instance whose process group was stopped while it trained, as it was then
    stopped_group: int
    outages: dict[str, int]  # each part of CONTROL_PLANE -> the map index of an experiment training as it went down
    wall_s: float


def map_index(process: psutil.Process) -> int:
    """The map index of the experiment a stage's process runs, from the seed in its checkout's params."""
    return FAULT_SEEDS.index(yaml.safe_load((Path(process.cwd()) / "params.yaml").read_text())["train"]["seed"])


def stop_a_training_task(cluster: Cluster, run_id: str) -> tuple[dict, int] | None:
    """SIGSTOP to the process group of an experiment training now (its task process, DVC and the stage), as a hung
    task: the worker's supervisor stays alive and heartbeats for it. The task instance, as it was, and the group."""
    with suppress(psutil.Error, ValueError):
        (_, process), *_ = cluster.trainings()
        index, group = map_index(process), os.getpgid(process.pid)
        os.killpg(group, signal.SIGSTOP)
        (task,) = [
            ti for ti in cluster.task_instances(run_id) if (ti["task_id"], ti["map_index"]) == ("experiment", index)
        ]
        return task, group
    return None


@pytest.fixture(scope="module")
def faulted(cluster: Cluster, sweep: Sweep) -> FaultedSweep:
    """A sweep of 5 experiments (after the other, not to share the workers with it): one training task stopped; then,
    while it waits for its time to run out, the API server, the scheduler and PostgreSQL each down for OUTAGE_S
    seconds, one after the other, each once another experiment trains."""
    run_id = "faults"
    started = time.monotonic()
    conf = {"grid": {"train.seed": FAULT_SEEDS}, "set_params": FAULT_PARAMS}
    assert cluster.trigger(SWEEP, run_id, conf).returncode == 0
    stopped, group = wait_until(lambda: stop_a_training_task(cluster, run_id), 300, "an experiment training", 0.2)

    def training() -> tuple[int] | None:
        """The map index of an experiment training now (not the stopped one)."""
        with suppress(psutil.Error, ValueError):
            (_, process), *_ = cluster.trainings()
            return (map_index(process),)
        return None

    outages = {}
    for part in CONTROL_PLANE:
        (outages[part],) = wait_until(training, 300, "another experiment training", 0.2)
        with cluster.down(part):
            time.sleep(OUTAGE_S)
    assert cluster.wait_for_run(run_id, 600) == "success"
    return FaultedSweep(run_id, stopped, group, outages, time.monotonic() - started)


def test_a_stopped_task_is_ended_from_outside_and_its_retry_lands_the_experiment_once(
    cluster: Cluster, faulted: FaultedSweep
):
    sys.path.insert(0, str(REPO / "dags"))  # as Airflow puts the DAG folder on sys.path
    from parity_lstm_checkout import WATCHDOG_GRACE_S

    index, stopped_try = faulted.stopped["map_index"], faulted.stopped["try_number"]
    (retried,) = [ti for ti in cluster.task_instances(faulted.run_id) if ti["map_index"] == index]
    assert retried["state"] == "success" and retried["try_number"] == stopped_try + 1
    _, stopped_log = cluster.task_logs(faulted.run_id, "experiment", index)[stopped_try]
    assert "Running stage 'train'" in stopped_log and "Running stage 'evaluate'" not in stopped_log
    # The watchdog ended the whole group: a SIGCONT now has nothing to wake, and nothing changes.
    with pytest.raises(ProcessLookupError):
        os.killpg(faulted.stopped_group, signal.SIGCONT)
    # Its time, the watchdog's grace, then a minute for the retry's delay and start and one for an outage.
    bound = TASK_TIMEOUT + WATCHDOG_GRACE_S + 2 * 60
    waited = (retried["start_date"] - faulted.stopped["start_date"]).total_seconds()
    print(f"the stopped task's retry started {waited:.0f} s after its first try (bound {bound} s)")
    assert waited <= bound


def test_a_control_plane_down_a_minute_at_a_time_ends_no_task_and_nothing_trains_twice(
    cluster: Cluster, faulted: FaultedSweep, sweep: Sweep
):
    """Each part went down while an experiment other than the stopped one trained, yet no task but the stopped one has
    a second try; trainings counted in the task logs of every try: a training that finished is followed by
    `evaluate`."""
    assert experiments_of(cluster, faulted.run_id) == [f"{faulted.run_id}-{index}" for index in range(len(FAULT_SEEDS))]
    tasks = cluster.task_instances(faulted.run_id)
    print(f"training as each part went down: {faulted.outages}")
    tries = {(ti["task_id"], ti["map_index"]): ti["try_number"] for ti in tasks}
    assert tries.pop(("experiment", faulted.stopped["map_index"])) == 2
    assert set(tries.values()) == {1}, tries
    trainings = {index: cluster.trainings_finished(faulted.run_id, index) for index in range(len(FAULT_SEEDS))}
    assert trainings == dict.fromkeys(range(len(FAULT_SEEDS)), 1), trainings
    print(
        f"{len(FAULT_SEEDS)} experiments in {faulted.wall_s:.0f} s with {', '.join(CONTROL_PLANE)} each down "
        f"{OUTAGE_S} s; the sweep of 4 under its faults: {sweep.wall_s:.0f} s"
    )
