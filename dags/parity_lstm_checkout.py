"""What the tasks of the parity-lstm DAGs share: a fresh checkout with the run's params, and recording an experiment.

A task may run on any worker (Celery, Kubernetes). So it never shares a folder with another task: it clones the
repository at the run's commit into a temporary folder, applies the run's params overrides as `dvc exp run -S`
would, checks them with the stages' own schema (`python -m parity_lstm.params`), and pulls from and pushes to the DVC
remote what its DVC commands need and make, run-cache included. The DVC remote is the repository's default, or the
worker's own (`dvc remote add --global --default`, as dags/cluster/up sets up); with neither, the repository's own
cache is the remote (every task then runs on the machine that holds the repository).

Environment (the same on every Airflow part): PARITY_LSTM_REPO, the repository a run uses unless its conf names
another (default: the one this file is in); PARITY_LSTM_TASK_TIMEOUT, the seconds any task may run (default 6 hours;
a watchdog outside the task ends it WATCHDOG_GRACE_S later if Airflow's own timeout could not).
"""

import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path

import psutil
from airflow.sdk import Param
from dvc.repo import Repo
from dvc.utils.hydra import apply_overrides

# The repository this DAG file is in.
HERE = str(Path(__file__).resolve().parents[1])


def task_timeout() -> timedelta:
    """Every task's execution_timeout: a hung git or DVC call must not hold a worker forever."""
    value = os.environ.get("PARITY_LSTM_TASK_TIMEOUT", str(6 * 3600))
    try:
        return timedelta(seconds=float(value))
    except ValueError:
        raise ValueError(f"PARITY_LSTM_TASK_TIMEOUT={value!r}: a number of seconds expected") from None


TASK_TIMEOUT = task_timeout()
# Seconds past TASK_TIMEOUT before the watchdog ends a task that Airflow's own timeout did not end.
WATCHDOG_GRACE_S = 30

# Run conf both DAGs take (`-c '{...}'`, or the trigger form in the UI).
RUN_CONF = {
    "set_params": Param(
        [], type="array", items={"type": "string"}, description='as for `dvc exp run -S`: ["train.epochs=2", ...]'
    ),
    "repo": Param(
        None, type=["null", "string"], description="git URL or path (default: $PARITY_LSTM_REPO, else this DAG's)"
    ),
    "rev": Param("HEAD", type="string", description="the commit, branch or tag to run"),
}


class CommandFailed(RuntimeError):
    pass


def run(cwd: Path, *command: str, data: bool = False) -> str:
    """Run a command as a person would, its output in the task log line by line as it comes; return that output.

    With `data`, return stdout alone (what the caller parses) and let stderr go to the log as it is. Failing fails
    the task; a task stopped while the command runs (execution_timeout, a signal) stops the command and its children.
    """
    print("$", shlex.join(command), flush=True)
    # The worker's own interpreter runs DVC and, through PATH, the stages' `python -m ...`.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    stderr = None if data else subprocess.STDOUT
    lines = []
    # As a context, the process's pipe is closed whatever happens.
    with subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True) as process:
        try:
            for line in process.stdout:
                print(line, end="", flush=True)
                lines.append(line)
            returncode = process.wait()
        except BaseException:
            stop(process)
            raise
    output = "".join(lines)
    if returncode:
        last_lines = "\n".join(output.strip().splitlines()[-5:])
        where = "its errors are in the log above" if data else last_lines
        raise CommandFailed(f"`{shlex.join(command)}` failed (exit {returncode}):\n{where}")
    return output


def stop(process: subprocess.Popen) -> None:
    """Kill a command and every process it started (DVC runs each stage as a child)."""
    with suppress(psutil.NoSuchProcess):
        for child in psutil.Process(process.pid).children(recursive=True):
            with suppress(psutil.NoSuchProcess):
                child.kill()
    process.kill()
    process.wait()


def dvc(cwd: Path, *args: str, data: bool = False) -> str:
    return run(cwd, sys.executable, "-m", "dvc", *args, data=data)


def default_repo() -> str:
    return os.environ.get("PARITY_LSTM_REPO") or HERE


def safe_name(text: str) -> str:
    """`text` as a part of a git ref's name (an experiment's, a branch's): an Airflow run id has ':', '+' and '.'."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "run"


@contextmanager
def watched() -> Iterator[None]:
    """This task's process group ended from outside once TASK_TIMEOUT and a grace are past, should the task outlive
    them: by a watchdog in a session of its own (parity_lstm_watchdog.py), which acts whatever the task's state.
    Airflow's own execution_timeout is a signal the task handles itself, which a stopped or deadlocked task never
    does, while the worker's supervisor keeps its heartbeat going. Ends with the task."""
    seconds = TASK_TIMEOUT.total_seconds() + WATCHDOG_GRACE_S
    command = [sys.executable, "-m", "parity_lstm_watchdog", str(os.getpgid(0)), str(seconds)]
    watchdog = subprocess.Popen(command, cwd=Path(__file__).parent, start_new_session=True)
    try:
        yield
    finally:
        watchdog.kill()
        watchdog.wait()


@contextmanager
def checkout(repo: str | None, rev: str, set_params: list[str]) -> Iterator[Path]:
    """A temporary clone of `repo` (default: `default_repo()`) at `rev`, with `set_params` applied and checked, the
    task watched."""
    repo = repo or default_repo()
    with watched(), tempfile.TemporaryDirectory(prefix="parity-lstm-") as folder:
        work = Path(folder)
        run(work, "git", "clone", "--quiet", repo, ".")
        run(work, "git", "checkout", "--quiet", rev)
        # Experiments are commits: a worker with no git identity still needs one.
        for key, value in (("user.name", "parity-lstm airflow"), ("user.email", "airflow@parity-lstm.invalid")):
            if subprocess.run(["git", "config", key], cwd=work, capture_output=True).returncode:
                run(work, "git", "config", key, value)
        if subprocess.run([sys.executable, "-m", "dvc", "remote", "default"], cwd=work, capture_output=True).returncode:
            if not Path(repo).is_dir():
                raise CommandFailed(f"{repo} has no default DVC remote: tasks on other machines cannot share data")
            dvc(work, "remote", "add", "--local", "--default", "repository", str(Path(repo).resolve() / ".dvc/cache"))
        apply_params(work, set_params)
        yield work


def apply_params(work: Path, set_params: list[str]) -> None:
    """Check that each key of ["key=value", ...] names a param, apply them to params.yaml as `dvc exp run -S` does,
    then check the whole file."""
    run(work, sys.executable, "-m", "parity_lstm.params", *(item.partition("=")[0] for item in set_params))
    try:
        apply_overrides(work / "params.yaml", set_params)
    except Exception as error:  # DVC says "Invalid `--set-param` value"; the reason is in what it wraps
        reason = str(error.__cause__ or error).splitlines()[0]
        raise CommandFailed(f"set_params {set_params}: {reason}") from None
    run(work, sys.executable, "-m", "parity_lstm.params")


def commit_of(work: Path) -> str:
    return run(work, "git", "rev-parse", "HEAD", data=True).strip()


def push_metrics(work: Path) -> None:
    """Push the cached copies of the stages' `cache: false` outputs (the git-tracked metrics).

    `dvc push --run-cache` (DVC 3.67) pushes run-cache entries but not these copies, without which no other
    checkout can restore the stage from the run-cache: it would run the stage again.
    """
    with Repo(work) as repo:
        local = repo.cache.local
        copies = {
            out.hash_info
            for stage in repo.index.stages
            for out in stage.outs
            if not out.use_cache and out.hash_info and local.exists(out.hash_info.value)
        }
        repo.cloud.push(copies)


def pushed_before(work: Path, name: str) -> bool:
    """Whether the repository holds the experiment `name` of this checkout's commit and params, pushed by an earlier
    try of the same task (on any worker); then fetched, with its outputs from the DVC remote, and applied."""
    (commit,) = run(work, "git", "rev-parse", "HEAD", data=True).split()
    # DVC keeps an experiment at refs/exps/<the commit's first 2 hex digits>/<the other 38>/<name>.
    ref = f"refs/exps/{commit[:2]}/{commit[2:]}/{name}"
    if not run(work, "git", "ls-remote", "origin", ref, data=True).strip():
        return False
    params = (work / "params.yaml").read_text()
    try:
        dvc(work, "exp", "pull", "--force", "origin", name)
        kept = run(work, "git", "show", f"{ref}:params.yaml", data=True) == params  # else not this task's
        if kept:
            dvc(work, "exp", "apply", name)  # fails if an output is in neither this worker's cache nor the remote
    except CommandFailed:
        kept = False  # not whole: run it again
    if not kept:  # the local copy goes, so that this try's run of the same name does not conflict with it
        run(work, "git", "update-ref", "-d", ref)
    return kept


def record_experiment(work: Path, name: str) -> str:
    """Run the pipeline as the DVC experiment `name` and push it to the repository, unless an earlier try of this
    task pushed it already: that one is checked and kept, not computed again.

    Name it after the DAG run and task, so that a retry finds what an earlier try pushed, and one it cannot verify
    it replaces, never duplicates. Stages run before (by this run or any other) are restored from the run-cache.
    The experiment's ref goes last, once all its data is in the DVC remote: a try that dies before it leaves no ref,
    and its retry runs the experiment again (restoring what reached the run-cache); one that dies after it leaves a
    whole experiment, which a retry on any worker keeps.
    """
    if pushed_before(work, name):
        print(f"{name}: pushed by an earlier try, with this commit and params: kept, not run again", flush=True)
        return name
    dvc(work, "exp", "run", "--pull", "--name", name)
    dvc(work, "push", "--run-cache")  # the workspace holds the experiment's outputs
    push_metrics(work)
    dvc(work, "exp", "push", "--force", "--no-cache", "origin", name)
    return name
