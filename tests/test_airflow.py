"""The Airflow DAGs, run for real: `airflow dags test` (no scheduler) on scratch repositories, with tiny params."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scratch_repo import REPO, commit, dvc, identify, make_scratch_repo, run
from tests.test_pipeline import TINY_PARAMS


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    """An Airflow home with its SQLite database, as `airflow standalone` would make it."""
    home = tmp_path_factory.mktemp("airflow")
    airflow(home, REPO / "dags", "db", "migrate")
    return home


def airflow(home: Path, dags: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    command = [sys.executable, "-m", "airflow", *args]
    result = subprocess.run(command, cwd=dags.parent, env=env, capture_output=True, text=True)
    assert not check or result.returncode == 0, f"airflow {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def dags_test(home: Path, repo: Path, dag_id: str, conf: dict, check: bool = True) -> subprocess.CompletedProcess:
    """`airflow dags test` of a DAG in `repo`/dags: the DAG's default repository is `repo`."""
    return airflow(home, repo / "dags", "dags", "test", dag_id, "-c", json.dumps(conf), check=check)


def experiments(repo: Path) -> dict[str, dict]:
    """Every experiment in `repo`'s `dvc exp show`: name -> params.yaml."""
    shown = json.loads(dvc(repo, "exp", "show", "--json", stderr=False))
    return {
        rev["name"]: rev["data"]["params"]["params.yaml"]["data"]
        for baseline in shown
        for experiment in baseline.get("experiments") or []
        for rev in experiment["revs"]
    }


def repo_with_folder_remote(tmp_path: Path) -> Path:
    """A scratch pipeline (tiny params) at tmp_path/repo whose default DVC remote is the folder tmp_path/storage."""
    repo = make_scratch_repo(tmp_path / "repo", TINY_PARAMS)
    dvc(repo, "remote", "add", "-d", "shared", str(tmp_path / "storage"))
    commit(repo, "a folder DVC remote")
    return repo


def test_the_dag_folder_imports_with_both_dags(airflow_home: Path):
    local = ("--local", "--bundle-name", "dags-folder")  # parse the folder itself, as the DAG processor would
    listing = airflow(airflow_home, REPO / "dags", "dags", "list", *local, "-o", "json")
    listed = json.loads(listing.stdout[listing.stdout.index("[{") :])  # after Airflow's log lines
    assert {dag["dag_id"] for dag in listed} == {"parity_lstm_pipeline", "parity_lstm_sweep"}
    errors = airflow(airflow_home, REPO / "dags", "dags", "list-import-errors", *local)
    assert "No data found" in errors.stdout + errors.stderr


def test_pipeline_dag_runs_each_stage_once_and_records_an_experiment(airflow_home: Path, tmp_path: Path):
    repo = repo_with_folder_remote(tmp_path)

    first = dags_test(airflow_home, repo, "parity_lstm_pipeline", {"set_params": ["train.seed=3"]})
    # Each task reproduced its own stage and restored the ones before it from the run-cache, via the remote.
    assert re.findall(r"Running stage '(\w+)'", first.stdout) == ["generate", "targets", "train", "evaluate"]
    assert [params["train"]["seed"] for params in experiments(repo).values()] == [3]
    assert (tmp_path / "storage/runs").is_dir()

    second = dags_test(airflow_home, repo, "parity_lstm_pipeline", {"set_params": ["train.seed=3"]})
    assert "Running stage" not in second.stdout
    assert "Stage 'evaluate' is cached - skipping run" in second.stdout
    assert len(experiments(repo)) == 2


def test_a_bad_set_params_fails_the_first_task_and_pushes_nothing(airflow_home: Path, tmp_path: Path):
    repo = repo_with_folder_remote(tmp_path)

    result = dags_test(airflow_home, repo, "parity_lstm_pipeline", {"set_params": ["train.epochs=0"]}, check=False)
    assert result.returncode != 0
    assert "params.yaml: train.epochs = 0: Input should be greater than 0" in result.stdout
    assert re.findall(r"running task <TaskInstance: parity_lstm_pipeline\.(\w+)", result.stdout) == ["generate"]
    assert not (tmp_path / "storage").exists()
    assert experiments(repo) == {}


def test_sweep_dag_pushes_every_experiment_to_the_git_server_and_remote(airflow_home: Path, tmp_path: Path):
    server = tmp_path / "server.git"
    run(tmp_path, "git", "init", "-q", "--bare", str(server))
    repo = repo_with_folder_remote(tmp_path)
    run(repo, "git", "push", "-q", str(server), "HEAD")

    grid = {"train.seed": [0, 1], "train.learning_rate": [0.01, 0.02]}
    conf = {"repo": str(server), "grid": grid, "set_params": ["train.epochs=2"]}
    result = dags_test(airflow_home, repo, "parity_lstm_sweep", conf)
    tables = list((airflow_home / "parity_lstm_sweeps").glob("*.md"))
    assert len(tables) == 1
    assert tables[0].read_text() in result.stdout
    assert "| train.learning_rate=0.01 | 2 |" in tables[0].read_text()

    # A fresh clone of the server sees all four, and gets each one's model from the DVC remote.
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(server), str(clone))
    identify(clone)
    dvc(clone, "exp", "pull", "--all-commits", "origin")
    swept = experiments(clone)
    assert sorted((p["train"]["seed"], p["train"]["learning_rate"], p["train"]["epochs"]) for p in swept.values()) == [
        (0, 0.01, 2),
        (0, 0.02, 2),
        (1, 0.01, 2),
        (1, 0.02, 2),
    ]
    dvc(clone, "exp", "apply", next(iter(swept)))
    assert (clone / "models/model.keras").is_file()
