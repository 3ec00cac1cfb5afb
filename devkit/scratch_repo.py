"""A throw-away git + DVC copy of this pipeline, for the tests and the benchmark to run the real CLI in."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PIPELINE_FILES = (
    "dvc.yaml",
    "params.yaml",
    ".dvcignore",
    ".gitignore",
    ".dvc/config",
    ".dvc/.gitignore",
    ".dvc/plots/page.html",
    ".dvc/plots/lines.json",
    ".dvc/plots/log_x.json",
    ".dvc/plots/sequence.json",
)


def pipeline_environment() -> dict[str, str]:
    """This environment, with PATH leading to the interpreter running this: it then also runs DVC and, through PATH,
    the stages' `python -m ...`."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def checkout_environment() -> dict[str, str]:
    """`pipeline_environment()` with this checkout on PYTHONPATH: its `stages`, `parity_lstm` and `tests` import from
    any folder."""
    return pipeline_environment() | {"PYTHONPATH": str(REPO)}


def kernels_ready(cwd: Path = REPO) -> dict:
    """Every kernel's first call in a process of its own (`python -m parity_lstm.numerics.precompile`), in the
    environment this process has: the seconds it took, the kernels loaded from the cache and those compiled."""
    return json.loads(run(cwd, sys.executable, "-m", "parity_lstm.numerics.precompile", "--json", stderr=False))


def run(cwd: Path, *command: str, stderr: bool = True) -> str:
    """Run a command, fail with its output if it fails, return its stdout (and stderr)."""
    result = subprocess.run(command, cwd=cwd, env=pipeline_environment(), capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + (result.stderr if stderr else "")


def dvc(cwd: Path, *args: str, stderr: bool = True) -> str:
    return run(cwd, sys.executable, "-m", "dvc", *args, stderr=stderr)


def set_param(repo: Path, section: str, key: str, value) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params[section][key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def commit(repo: Path, message: str) -> None:
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", message)


def make_scratch_repo(path: Path, params: dict | None = None) -> Path:
    """Copy the pipeline (code, DAGs, dvc.yaml, params or `params`) into a new git repo at `path` and commit it. Its
    stages load the kernels from the machine's cache (parity_lstm.numerics.compiled), as any checkout does."""
    for name in PIPELINE_FILES:
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, path / name)
    for folder in ("parity_lstm", "stages", "tools", "dags"):
        shutil.copytree(REPO / folder, path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    if params is not None:
        (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(path, "git", "init", "-q")
    identify(path)
    commit(path, "pipeline")
    return path


def identify(repo: Path) -> None:
    """Give the repo a git identity to commit with (experiments are commits): CI has no global one."""
    run(repo, "git", "config", "user.name", "parity-lstm scratch")
    run(repo, "git", "config", "user.email", "scratch@parity-lstm.invalid")
