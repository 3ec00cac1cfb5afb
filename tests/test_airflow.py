"""The Airflow DAGs, run for real: `airflow dags test` (no scheduler) on scratch repositories, with tiny params."""

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from devkit.scratch_repo import REPO, dvc, pipeline_environment, run
from tests.tiny_pipeline import repo_with_folder_remote, stages_run

pytestmark = pytest.mark.slow
# The sweep DAG runs on a real cluster in test_cluster.py.
SET_PARAMS = ["train.epochs=2", "train.population=2"]


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    """An Airflow home with its SQLite database, as `airflow standalone` would make it."""
    home = tmp_path_factory.mktemp("airflow")
    airflow(home, REPO / "dags", "db", "migrate")
    return home


def airflow(home: Path, dags: Path, *args: str) -> subprocess.CompletedProcess:
    env = pipeline_environment() | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    command = [sys.executable, "-m", "airflow", *args]
    result = subprocess.run(command, cwd=dags.parent, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"airflow {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def dags_test(home: Path, repo: Path, dag_id: str, conf: dict) -> subprocess.CompletedProcess:
    """`airflow dags test` of a DAG in `repo`/dags: the DAG's default repository is `repo`."""
    return airflow(home, repo / "dags", "dags", "test", dag_id, "-c", json.dumps(conf))


def experiments(repo: Path) -> dict[str, dict]:
    """Every experiment in `repo`'s `dvc exp show`: name -> params.yaml."""
    shown = json.loads(dvc(repo, "exp", "show", "--json", stderr=False))
    return {
        rev["name"]: rev["data"]["params"]["params.yaml"]["data"]
        for baseline in shown
        for experiment in baseline.get("experiments") or []
        for rev in experiment["revs"]
    }


@pytest.fixture(scope="module")
def dag_repo(tmp_path_factory) -> Path:
    """The tiny pipeline with a folder DVC remote."""
    return repo_with_folder_remote(tmp_path_factory.mktemp("dags") / "repo")


def test_the_dag_folder_imports_with_both_dags(airflow_home: Path):
    local = ("--local", "--bundle-name", "dags-folder")  # parse the folder itself, as the DAG processor would
    listing = airflow(airflow_home, REPO / "dags", "dags", "list", *local, "-o", "json")
    listed = json.loads(listing.stdout[listing.stdout.index("[{") :])  # after Airflow's log lines
    assert {dag["dag_id"] for dag in listed} == {"parity_lstm_pipeline", "parity_lstm_sweep"}


def test_pipeline_dag_runs_each_stage_once_and_records_an_experiment(airflow_home: Path, dag_repo: Path):
    result = dags_test(airflow_home, dag_repo, "parity_lstm_pipeline", {"set_params": ["train.seed=3", *SET_PARAMS]})
    # Each task reproduced its own stage, in its own checkout, and restored the ones before it from the run-cache,
    # through the remote: every stage ran exactly once.
    assert re.findall(r"Running stage '(\w+)'", result.stdout) == ["generate", "targets", "train", "evaluate"]
    assert stages_run(result.stdout)["restored"] == {"generate", "targets", "train"}
    ((name, params),) = experiments(dag_repo).items()
    assert params["train"]["seed"] == 3 and re.fullmatch(r"pipeline-manual__[\w-]+", name), name
    assert (dag_repo.parent / "repo_storage/runs").is_dir()


def test_bad_set_params_fail_a_task_before_any_dvc_command_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A task's first steps: a checkout of the repository with the run's params applied and checked."""
    monkeypatch.syspath_prepend(str(REPO / "dags"))  # as Airflow puts the DAG folder on sys.path
    from parity_lstm_checkout import CommandFailed, checkout

    repo = repo_with_folder_remote(tmp_path / "repo")

    def refusal(*set_params: str) -> str:
        """ "checked out", or the last line of the error that stopped the checkout."""
        try:
            with checkout(str(repo), "HEAD", list(set_params)):
                return "checked out"
        except CommandFailed as error:
            return str(error).splitlines()[-1]

    assert refusal("train.epochs=2") == "checked out"
    assert refusal("train.epochs=0").endswith("params.yaml: train.epochs = 0: Input should be greater than 0")
    assert refusal("train.epochs").startswith("set_params ['train.epochs']: ")
    assert (
        refusal("train.nosuchkey=1")
        == "train.nosuchkey is not a param; the nearest: train.epochs, train.seed, train.cell"
    )
    assert not (tmp_path / "repo_storage").exists()


def test_a_retried_experiment_task_keeps_what_an_earlier_try_pushed_and_trains_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    """The sweep's `experiment` task, its first try killed the moment its experiment's ref reached the repository,
    before `dvc exp push` sent any data (as a try killed halfway through that push): the retry, in a checkout of its
    own with an empty DVC cache (another worker's), finds that experiment whole in the remote, of its commit and
    params, and keeps it. The same name with other params is not its own: that one is run and replaced. A try killed
    before its ref left no experiment: its retry runs it again, restoring from the run-cache what the try pushed."""
    monkeypatch.syspath_prepend(str(REPO / "dags"))  # as Airflow puts the DAG folder on sys.path
    import parity_lstm_checkout
    import parity_lstm_sweep

    repo = repo_with_folder_remote(tmp_path / "repo")
    commit = run(repo, "git", "rev-parse", "HEAD").strip()
    conf = {"repo": str(repo), "set_params": [], "rev": "HEAD"}

    def try_task(*set_params: str, map_index: int = 0) -> str:
        """A try of the task; what it printed."""
        task = parity_lstm_sweep.experiment.function
        planned = {"commit": commit, "set_params": list(set_params)}
        capsys.readouterr()
        assert task(planned, params=conf, run_id="manual__retried", ti=SimpleNamespace(map_index=map_index))
        return capsys.readouterr().out

    def refs() -> dict[str, str]:
        listed = run(repo, "git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps")
        return dict(line.split() for line in listed.splitlines())

    pushed = parity_lstm_checkout.dvc

    def killed_after_the_ref(work: Path, *args: str, data: bool = False) -> str:
        if args[:2] != ("exp", "push"):
            return pushed(work, *args, data=data)
        pushed(work, *args, *(["--no-cache"] if "--no-cache" not in args else []))
        raise ConnectionError("killed after its push")

    monkeypatch.setattr(parity_lstm_checkout, "dvc", killed_after_the_ref)
    with pytest.raises(ConnectionError):
        try_task("train.epochs=1")
    (first_ref, first_commit), *others = refs().items()
    assert not others and first_ref.endswith("/manual__retried-0")

    monkeypatch.setattr(parity_lstm_checkout, "dvc", pushed)
    retried = try_task("train.epochs=1")
    assert "Running stage" not in retried and "kept, not run again" in retried
    assert refs() == {first_ref: first_commit}
    assert list(experiments(repo)) == ["manual__retried-0"]

    other = try_task("train.epochs=2")
    assert "Running stage 'train'" in other
    assert list(refs()) == [first_ref] and refs()[first_ref] != first_commit
    assert experiments(repo)["manual__retried-0"]["train"]["epochs"] == 2

    def killed_before_the_ref(work: Path, *args: str, data: bool = False) -> str:
        if args[:2] == ("exp", "push"):
            raise ConnectionError("killed before its ref")
        return pushed(work, *args, data=data)

    monkeypatch.setattr(parity_lstm_checkout, "dvc", killed_before_the_ref)
    with pytest.raises(ConnectionError):
        try_task("train.epochs=3", map_index=1)
    assert not [ref for ref in refs() if ref.endswith("-1")]
    monkeypatch.setattr(parity_lstm_checkout, "dvc", pushed)
    redone = try_task("train.epochs=3", map_index=1)
    assert "Running stage 'train'" not in redone and "Stage 'train' is cached - skipping run" in redone
