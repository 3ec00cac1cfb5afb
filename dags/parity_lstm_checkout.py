"""What the tasks of the parity-lstm DAGs share: a fresh checkout with the run's params, and recording an experiment.

A task may run on any worker (Celery, Kubernetes). So it never shares a folder with another task: it clones the
repository at the run's commit into a temporary folder, applies the run's params overrides as `dvc exp run -S`
would, checks them with the stages' own schema (`python -m stages.params`), and pulls from and pushes to the DVC
remote what its DVC commands need and make, run-cache included. With no DVC remote configured, the repository's
own cache is the remote (every task then runs on the machine that holds the repository).
"""

import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from airflow.sdk import Param
from dvc.repo import Repo
from dvc.utils.hydra import apply_overrides

# The repository this DAG file is in: what a run uses unless its conf names another.
HERE = str(Path(__file__).resolve().parents[1])

# Run conf both DAGs take (`-c '{...}'`, or the trigger form in the UI).
RUN_CONF = {
    "set_params": Param(
        [], type="array", items={"type": "string"}, description='as for `dvc exp run -S`: ["train.epochs=2", ...]'
    ),
    "repo": Param(None, type=["null", "string"], description="git URL or path (default: the repository of this DAG)"),
    "rev": Param("HEAD", type="string", description="the commit, branch or tag to run"),
}


class CommandFailed(RuntimeError):
    pass


def run(cwd: Path, *command: str) -> str:
    """Run a command as a person would, print its output to the task log, return its stdout; failing fails the task."""
    print("$", shlex.join(command), flush=True)
    # The worker's own interpreter runs DVC and, through PATH, the stages' `python -m ...`.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    print(result.stdout + result.stderr, flush=True)
    if result.returncode:
        last_lines = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
        raise CommandFailed(f"`{shlex.join(command)}` failed (exit {result.returncode}):\n{last_lines}")
    return result.stdout


def dvc(cwd: Path, *args: str) -> str:
    return run(cwd, sys.executable, "-m", "dvc", *args)


@contextmanager
def checkout(repo: str | None, rev: str, set_params: list[str]) -> Iterator[Path]:
    """A temporary clone of `repo` (default: this one) at `rev`, with `set_params` applied and checked."""
    repo = repo or HERE
    with tempfile.TemporaryDirectory(prefix="parity-lstm-") as folder:
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
    """Apply ["key=value", ...] to params.yaml as `dvc exp run -S` does, then check the whole file."""
    try:
        apply_overrides(work / "params.yaml", set_params)
    except Exception as error:  # DVC says "Invalid `--set-param` value"; the reason is in what it wraps
        reason = str(error.__cause__ or error).splitlines()[0]
        raise CommandFailed(f"set_params {set_params}: {reason}") from None
    run(work, sys.executable, "-m", "stages.params")


def commit_of(work: Path) -> str:
    return run(work, "git", "rev-parse", "HEAD").strip()


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


def record_experiment(work: Path) -> str:
    """Run the pipeline as a DVC experiment and push it to the repository; its name.

    Stages run before (by this run or any other) are restored from the run-cache, not recomputed.
    """
    dvc(work, "exp", "run", "--pull")
    name = dvc(work, "exp", "ls", "--name-only").split()[-1]  # a fresh clone holds this experiment only
    dvc(work, "exp", "push", "--run-cache", "origin", name)
    push_metrics(work)
    return name
