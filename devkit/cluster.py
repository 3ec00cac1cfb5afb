"""The one-machine Airflow cluster of dags/cluster/up, driven from Python: its tests and the `airflow` bench part use
it to start and stop the cluster, trigger DAG runs, read task states from its database and task logs from the
workers' own folders, and break its parts as operators see them break."""

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.request import Request, urlopen

import psutil

from devkit.scratch_repo import REPO, pipeline_environment, run

WORKERS = (1, 2)
FINISHED = ("success", "failed")


def script(name: str, folder: Path, **settings: str) -> str:
    """dags/cluster/<name> for the cluster in `folder`, with `settings` in its environment."""
    command = [REPO / "dags/cluster" / name, folder]
    env = pipeline_environment() | settings
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"dags/cluster/{name} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@dataclass
class Cluster:
    folder: Path
    env: dict[str, str]  # what dags/cluster/up wrote to cluster.env: every Airflow part's settings

    @classmethod
    @contextmanager
    def started(cls, folder: Path, repo: Path, **timeouts: int) -> Iterator["Cluster"]:
        """dags/cluster/up serving `repo`'s committed HEAD, then dags/cluster/down. `timeouts`: `heartbeat` (seconds
        without a heartbeat before the scheduler fails a task), `task` (seconds any task may run)."""
        try:
            settings = {"PARITY_LSTM_CLUSTER_REPO": str(repo)}
            names = {"heartbeat": "CLUSTER_HEARTBEAT_TIMEOUT", "task": "PARITY_LSTM_TASK_TIMEOUT"}
            settings |= {names[name]: str(seconds) for name, seconds in timeouts.items()}
            print(script("up", folder, **settings), flush=True)
            words = shlex.split((folder / "cluster.env").read_text())  # export NAME=value ...
            yield cls(folder, dict(word.split("=", 1) for word in words if word != "export"))
        finally:
            if (folder / "pids").is_dir():
                print(script("down", folder), flush=True)

    @property
    def git_url(self) -> str:
        return self.env["PARITY_LSTM_REPO"]

    @property
    def dvc_remote(self) -> str:
        return self.env["PARITY_LSTM_DVC_REMOTE"]

    def experiment_refs(self) -> list[str]:
        """The experiments the git server holds."""
        return run(self.folder, "git", "ls-remote", self.git_url, "refs/exps/*").split()[1::2]

    def api(self, path: str, body: dict | None = None) -> dict:
        """A call of the Airflow REST API, as the UI makes it: a GET, or a POST of `body`."""
        url = f"http://127.0.0.1:{self.env['AIRFLOW__API__PORT']}/api/v2/{path}"
        data = json.dumps(body).encode() if body is not None else None
        request = Request(url, data=data, headers={"Content-Type": "application/json"})
        with urlopen(request, timeout=60) as response:
            return json.load(response)

    def airflow(self, *args: str) -> subprocess.CompletedProcess:
        """An `airflow` command with the control plane's settings, as an operator runs it; not checked."""
        command = [sys.executable, "-m", "airflow", *args]
        env = pipeline_environment() | self.env
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)

    def query(self, sql: str, *args) -> list[tuple]:
        """Rows of the cluster's metadata database."""
        import psycopg2  # requirements/cluster.txt: the other bench parts run without it

        url = self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg2", "")
        with psycopg2.connect(url) as connection, connection.cursor() as cursor:
            cursor.execute(sql, args)
            return cursor.fetchall()

    def trigger(self, dag_id: str, run_id: str, conf: dict) -> subprocess.CompletedProcess:
        """`airflow dags trigger`, once the DAG processor has registered the DAG; not checked."""
        wait_until(lambda: self.query("select 1 from dag where dag_id = %s", dag_id), 120, f"{dag_id} registered")
        return self.airflow("dags", "trigger", dag_id, "--run-id", run_id, "--conf", json.dumps(conf))

    def run_state(self, run_id: str) -> str | None:
        rows = self.query("select state from dag_run where run_id = %s", run_id)
        return rows[0][0] if rows else None

    def wait_for_run(self, run_id: str, timeout_s: float) -> str:
        """The run's final state."""
        wait_until(lambda: self.run_state(run_id) in FINISHED, timeout_s, f"run {run_id} finished")
        return self.run_state(run_id)

    def task_instances(self, run_id: str) -> list[dict]:
        """Each task instance of a run: task_id, map_index, state, try_number, start_date, end_date."""
        columns = ("task_id", "map_index", "state", "try_number", "start_date", "end_date")
        sql = f"select {', '.join(columns)} from task_instance where run_id = %s order by task_id, map_index"
        return [dict(zip(columns, row, strict=True)) for row in self.query(sql, run_id)]

    def task_logs(self, run_id: str, task_id: str, map_index: int = -1) -> dict[int, tuple[int, str]]:
        """attempt -> (the worker that ran it, its log's messages): read from each worker's own log folder."""
        task = f"dag_id=*/run_id={run_id}/task_id={task_id}" + (f"/map_index={map_index}" if map_index >= 0 else "")
        logs = {}
        for worker in WORKERS:
            for log in (self.folder / f"worker{worker}/logs").glob(f"{task}/attempt=*.log"):
                events = [json.loads(line).get("event", "") for line in log.read_text().splitlines() if line]
                logs[int(log.stem.removeprefix("attempt="))] = (worker, "\n".join(events))
        return logs

    def trainings_finished(self, run_id: str, map_index: int) -> int:
        """How many tries of an experiment task finished their training: a finished training is followed by
        `evaluate`."""
        return sum(
            "Running stage 'evaluate'" in log for _, log in self.task_logs(run_id, "experiment", map_index).values()
        )

    def supervised(self, *args: str) -> str:
        """`supervisorctl` of the cluster's supervisord, which runs its Airflow parts; its output."""
        command = [sys.executable, "-m", "supervisor.supervisorctl", "-c", self.env["PARITY_LSTM_SUPERVISOR_CONF"]]
        return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120).stdout

    def worker_processes(self, worker: int) -> list[psutil.Process]:
        """The worker's running processes: the worker and everything it started (its running task, DVC, the stage)."""
        pid = int(self.supervised("pid", f"worker{worker}").strip() or 0)
        with suppress(psutil.Error):
            if pid:
                worker_process = psutil.Process(pid)
                return [worker_process, *worker_process.children(recursive=True)]
        return []

    def trainings(self) -> list[tuple[int, psutil.Process]]:
        """Each worker whose experiment trains now, not stopped, with the train stage's process (in the task's process
        group, with the task process and DVC)."""
        found = []
        for worker in WORKERS:
            for process in self.worker_processes(worker):
                with suppress(psutil.Error):
                    if "stages.train" in process.cmdline() and process.status() != psutil.STATUS_STOPPED:
                        found.append((worker, process))
        return found

    def kill_worker(self, worker: int) -> None:
        """SIGKILL to the worker and everything it started, as if its machine died; supervisord then starts the
        worker anew, as a machine would when it comes back."""
        for process in self.worker_processes(worker):
            with suppress(psutil.Error):
                process.kill()

    @contextmanager
    def down(self, part: str) -> Iterator[None]:
        """A part of the control plane stopped, then started again as it was: `api-server`, `scheduler`,
        `dag-processor` (supervisord's programs), `redis` or `postgres`, as an operator's restart of it."""
        if part == "redis":
            pid_file, command = self.folder / "pids/redis", ["redis-server", str(self.folder / "redis.conf")]
            port = self.env["AIRFLOW__CELERY__BROKER_URL"].rsplit(":", 1)[1].split("/")[0]
            subprocess.run(["redis-cli", "-p", port, "shutdown"], capture_output=True, timeout=60)
            yield
            # Started as dags/cluster/up starts it, in a session of its own, which dags/cluster/down stops.
            started = f'setsid "$@" >> {shlex.quote(str(self.folder / "logs/redis.log"))} 2>&1 < /dev/null & echo $!'
            pid = subprocess.run(["sh", "-c", started, "sh", *command], capture_output=True, text=True).stdout
            pid_file.write_text(pid)
        elif part == "postgres":
            data = (self.folder / "pids/postgres.data").read_text().strip()
            options = (Path(data) / "postmaster.opts").read_text().split(None, 1)[1].strip()  # as started by up
            self.postgres("-D", data, "-m", "fast", "-w", "stop")
            yield
            self.postgres("-D", data, "-l", f"{data}/server.log", "-w", "-o", options, "start")
        else:
            assert "stopped" in self.supervised("stop", part), self.supervised("status")
            yield
            assert "started" in self.supervised("start", part), self.supervised("status")

    @staticmethod
    def postgres(*args: str) -> None:
        """pg_ctl, as the user dags/cluster/up runs PostgreSQL as."""
        pg_ctl = max(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda path: int(path.parts[-3]))
        as_db = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        subprocess.run([*as_db, str(pg_ctl), *args], check=True, capture_output=True, timeout=120)


def wait_until(condition, timeout_s: float, what: str, every_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        assert time.monotonic() < deadline, f"not {what} within {timeout_s:.0f} s"
        time.sleep(every_s)
    return result
