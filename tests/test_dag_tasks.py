"""What every task of the DAGs does around its commands: output streamed to the task log, commands stopped with
their task, a time limit on every task, names that git takes."""

import itertools
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress

import psutil
from hypothesis import given
from hypothesis import strategies as st

from bench.studies import STUDIES
from devkit.cluster import wait_until
from devkit.scratch_repo import REPO, pipeline_environment

sys.path.insert(0, str(REPO / "dags"))  # as Airflow puts the DAG folder on sys.path
import parity_lstm_checkout as checkout
import parity_lstm_sweep as sweep


def test_a_commands_output_reaches_the_task_log_line_by_line_while_it_runs(tmp_path, capsys):
    go = tmp_path / "go"
    command = [sys.executable, "-m", "tests.first_line_then_wait", str(go)]
    returned = []
    running = threading.Thread(target=lambda: returned.append(checkout.run(REPO, *command)), daemon=True)
    running.start()
    seen = []
    try:
        wait_until(lambda: seen.append(capsys.readouterr().out) or "first\n" in "".join(seen), 60, "the first line")
        assert running.is_alive()  # the command is still waiting for `go`: its first line came before its end
    finally:
        go.touch()
    running.join()
    assert "second\n" in capsys.readouterr().out
    assert returned == ["first\nsecond\n"]


def test_a_task_stopped_while_its_command_runs_stops_the_command_and_its_children(tmp_path):
    """As Airflow stops a task past its execution_timeout: an exception raised in the task while it waits."""
    pid_file = tmp_path / "sleeper.pid"
    command = ["sh", "-c", f"sleep 300 & echo $! > {pid_file}.tmp && mv {pid_file}.tmp {pid_file}; wait"]

    def timed_out(signum, frame):
        raise TimeoutError("execution_timeout")

    def stop_once_the_child_runs():
        wait_until(pid_file.exists, 60, "the command started its child")
        os.kill(os.getpid(), signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, timed_out)
    try:
        threading.Thread(target=stop_once_the_child_runs, daemon=True).start()
        try:
            checkout.run(tmp_path, *command)
        except TimeoutError:
            pass
        else:
            raise AssertionError("the command ended by itself")
    finally:
        signal.signal(signal.SIGUSR1, previous)
    sleeper = int(pid_file.read_text())

    def stopped() -> bool:  # SIGKILL takes effect soon after it is sent, not at once
        try:
            return psutil.Process(sleeper).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_until(stopped, 30, "the command's child stopped", 0.05)


# Each task's execution_timeout in seconds, as the DAG files set it, read with Airflow's own DagBag.
def test_every_task_has_the_execution_timeout_its_environment_sets():
    def timeouts(**env: str) -> dict[str, float]:
        command = [sys.executable, "-m", "tests.dag_timeouts"]
        env = pipeline_environment() | {"PYTHONPATH": f"{REPO / 'dags'}:{REPO}"} | env  # the DAG folder, as Airflow
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.splitlines()[-1])

    tasks = ["plan", "experiment", "convergence"]
    expected = [f"parity_lstm_sweep.{task}" for task in tasks]
    expected += [f"parity_lstm_pipeline.{stage}" for stage in ("generate", "targets", "train", "evaluate")]
    assert timeouts() == dict.fromkeys(expected, 6 * 3600)
    assert timeouts(PARITY_LSTM_TASK_TIMEOUT="90") == dict.fromkeys(expected, 90)


@given(st.text())
def test_any_run_id_gives_experiment_and_branch_names_git_takes(run_id: str):
    name = checkout.safe_name(run_id)
    for ref in (f"refs/exps/ab/cdef/{name}-0", f"refs/heads/sweeps/{name}"):
        assert subprocess.run(["git", "check-ref-format", ref]).returncode == 0, ref


def test_the_watchdog_kills_a_stopped_task_group_past_its_time_and_leaves_an_ended_one_at_once():
    """A stopped (SIGSTOP) process never acts on Airflow's execution_timeout, a signal it must handle itself; the
    watchdog, in a session of its own, ends the task's whole process group instead."""
    hung = subprocess.Popen(["sleep", "300"], start_new_session=True)
    watchdog = [sys.executable, "-m", "parity_lstm_watchdog", str(hung.pid), "1"]
    try:
        os.killpg(hung.pid, signal.SIGSTOP)
        ended = subprocess.run(watchdog, cwd=REPO / "dags", capture_output=True, text=True, timeout=60)
        assert hung.wait(timeout=30) == -signal.SIGKILL
    finally:
        with suppress(ProcessLookupError):
            os.killpg(hung.pid, signal.SIGKILL)
        hung.wait()
    assert ended.returncode == 0 and f"process group {hung.pid} ran past 1 s: killing it" in ended.stderr
    started = time.monotonic()
    watching_nothing = subprocess.run([*watchdog[:3], str(hung.pid), "300"], cwd=REPO / "dags", timeout=60)
    assert watching_nothing.returncode == 0 and time.monotonic() - started < 30


def test_a_study_grid_runs_unchanged_through_the_sweep_dag_as_dvc_queues_it():
    """The sweep DAG takes a grid as an object of values, or as the `-S` values a study of docs/results.md prints
    for `dvc exp run --queue`: the same experiments as DVC queues (its own expansion, ranges and choices included)."""
    assert sweep.combinations({"train.seed": [0, 1], "train.cell": ["gru"]}) == [
        ["train.seed=0", 'train.cell="gru"'],
        ["train.seed=1", 'train.cell="gru"'],
    ]
    words = shlex.split(STUDIES["cells"].grids[0])
    overrides = [word for flag, word in itertools.pairwise(words) if flag == "-S"]
    experiments = sweep.combinations(overrides)
    assert len(experiments) == 12 and len({json.dumps(one) for one in experiments}) == 12
    assert experiments[-1][:3] == ["train.cell=simple_rnn", "targets.mode=final", "data.min_len=1"]
    assert sweep.combinations(["train.seed=range(1000,1024,8)"]) == [
        [f"train.seed={seed}"] for seed in (1000, 1008, 1016)
    ]
