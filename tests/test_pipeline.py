"""The real `dvc repro` on throw-away copies of the pipeline with tiny params, judged by DVC's own messages."""

import ast
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bench.scratch_repo import REPO, dvc, make_scratch_repo, run, set_param
from stages import fused
from stages.evaluate import load_trained_model
from stages.params import DataParams, EvaluateParams, TargetsParams, TrainParams
from tests.tiny_pipeline import STAGES, TINY_PARAMS, copy_of, ran_exactly, repro


@pytest.fixture
def repo(trained_repo, tmp_path: Path) -> Path:
    """A copy of the session's trained tiny pipeline, to change."""
    return copy_of(trained_repo.path, tmp_path / "repo")


def test_a_clean_repro_runs_every_stage_and_each_writes_its_metrics(trained_repo):
    assert trained_repo.first_run["ran"] == set(STAGES)
    metrics = trained_repo.path / "metrics"
    evaluation = json.loads((metrics / "evaluate.json").read_text())
    assert {"step_accuracy", "final_step_accuracy", "sequence_accuracy", "mean_final_confidence"} <= evaluation.keys()
    assert evaluation["by_length"].keys() == {"6", "30"}
    assert json.loads((metrics / "generate.json").read_text())["train"]["count"] == TINY_PARAMS["data"]["count"]
    assert json.loads((metrics / "targets.json").read_text())["train"]["supervised_steps_per_sequence"] == 6
    # No digits that follow the weights' last bits, which differ between CPUs (docs/reproducibility.md).
    loss = json.loads((metrics / "train/metrics.json").read_text())["train"]["loss"]
    assert 0 < loss == float(f"{loss:.4g}")
    assert evaluation["mean_final_confidence"] == round(evaluation["mean_final_confidence"], 5)


def test_repro_reruns_only_what_a_change_touches_and_restores_what_ran_before(repo: Path):
    first = {path: (repo / path).read_bytes() for path in ("dvc.lock", "models/model.keras", "metrics/evaluate.json")}
    assert repro(repo) == ran_exactly()

    set_param(repo, "train", "epochs", 2)
    assert repro(repo) == ran_exactly("train", "evaluate")
    diff = json.loads(dvc(repo, "metrics", "diff", "--json"))
    assert diff["metrics/train/metrics.json"]["train.loss"]["diff"] != 0

    # Params run before: restored from the run-cache, not run again, to the same bytes.
    set_param(repo, "train", "epochs", TINY_PARAMS["train"]["epochs"])
    assert repro(repo) == {"ran": set(), "restored": {"train", "evaluate"}, "skipped": {"generate", "targets"}}
    assert {path: (repo / path).read_bytes() for path in first} == first

    set_param(repo, "targets", "mode", "final")
    assert repro(repo) == ran_exactly("targets", "train", "evaluate")

    set_param(repo, "data", "seq_len", 8)
    assert repro(repo) == ran_exactly(*STAGES)
    assert json.loads((repo / "metrics/generate.json").read_text())["train"]["seq_len"] == 8


def test_an_edit_to_the_model_file_module_reruns_only_train_and_evaluate(repo: Path):
    with (repo / "stages/model_file.py").open("a") as module:
        module.write("# an edit\n")
    assert json.loads(dvc(repo, "status", "--json", stderr=False)).keys() == {"train", "evaluate"}


def stage_modules(module: str) -> set[str]:
    """The files of `stages` that `python -m stages.<module>` runs: the module and, transitively, what it imports
    from the package."""
    found, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            for node in ast.walk(ast.parse((REPO / "stages" / f"{name}.py").read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stages."):
                    todo.append(node.module.removeprefix("stages."))
                elif isinstance(node, ast.ImportFrom) and node.module == "stages":  # from stages import fused
                    todo.extend(alias.name for alias in node.names)
    return {f"stages/{name}.py" for name in found}


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_depends_on_exactly_the_code_it_runs(stage):
    code = stage_modules(stage)
    # The package's __init__ holds TensorFlow's settings: they change what runs only in a stage that loads it.
    if any(re.search(r"^import (keras|tensorflow)", (REPO / path).read_text(), re.M) for path in code):
        code.add("stages/__init__.py")
    deps = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["deps"]
    assert {dep for dep in deps if dep.startswith("stages/")} == code


@pytest.mark.parametrize(
    "stage, section, schema",
    [
        ("generate", "data", DataParams),
        ("targets", "targets", TargetsParams),
        ("train", "train", TrainParams),
        ("evaluate", "evaluate", EvaluateParams),
    ],
)
def test_each_stage_declares_exactly_the_params_it_reads(stage, section, schema):
    declared = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["params"]
    assert sorted(declared) == sorted(f"{section}.{field}" for field in schema.model_fields)


def test_default_params_are_the_reference_experiment():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert DataParams(**params["data"]).model_dump(include={"seq_len", "count"}) == {"seq_len": 50, "count": 100_000}
    reference = {
        "engine": "fused",
        "units": 1,
        "epochs": 10,
        "batch_size": 128,
        "learning_rate": 0.001,
        "forget_bias": 1.0,
        "population": 1,
        "stop_at_accuracy": None,
    }
    assert TrainParams(**params["train"]).model_dump(exclude={"seed"}) == reference
    assert TargetsParams(**params["targets"]).model_dump() == {"mode": "running", "weighting": "uniform"}


def test_the_committed_dvc_lock_records_the_committed_commands_code_and_params():
    """The README's `dvc repro` in a fresh clone writes dvc.lock anew: with a stale md5, param or command in the
    committed one, `git status` shows it modified (outputs are byte-stable). After changing a stage: `dvc repro`
    and commit dvc.lock."""
    locked = yaml.safe_load((REPO / "dvc.lock").read_text())["stages"]
    declared = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert locked.keys() == declared.keys()
    for name, stage in locked.items():
        assert stage["cmd"] == declared[name]["cmd"]
        for dep in stage["deps"]:
            if dep["path"].startswith("stages/"):  # the code; data deps are other stages' outputs
                assert hashlib.md5((REPO / dep["path"]).read_bytes()).hexdigest() == dep["md5"], (name, dep["path"])
        for key, value in stage["params"]["params.yaml"].items():
            section, field = key.split(".")
            assert params[section][field] == value, (name, key)


def start_and_interrupt(repo: Path, command: list[str], sig: signal.Signals) -> tuple[int, str]:
    """Run `command` until training has logged a few epochs, send `sig` to its process group, return exit and log."""
    log = repo / "interrupted.log"
    with log.open("w") as output:
        # A session of its own, so that the signal reaches DVC and the stage as Ctrl-C in a terminal would.
        process = subprocess.Popen(command, cwd=repo, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            losses = repo / "metrics/train/plots/metrics/train/loss.tsv"
            deadline = time.monotonic() + 300  # a bound for a slow, loaded machine, not a measurement
            while not (losses.is_file() and len(losses.read_text().splitlines()) > 3):
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            os.killpg(process.pid, sig)
            interrupted = time.monotonic()
            returncode = process.wait(timeout=60)
        finally:  # a run that ignored the signal must not train on (100,000 epochs) after the test
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    # Within seconds, where one that trained on would take hours: a bound with room for a slow machine's teardown.
    assert time.monotonic() - interrupted < 30
    return returncode, log.read_text()


@pytest.mark.slow
def test_interrupted_training_leaves_no_partial_model_and_the_next_repro_recovers(repo: Path):
    model = (repo / "models/model.keras").read_bytes()
    set_param(repo, "train", "epochs", 100_000)  # far longer than the test waits
    returncode, log = start_and_interrupt(repo, [sys.executable, "-m", "dvc", "repro"], signal.SIGINT)
    assert returncode != 0 and "train: interrupted, no model written" in log
    # The previous model or none (DVC removes a stage's outputs before running it), never a partial file.
    assert {path.name for path in (repo / "models").iterdir()} <= {".gitignore", "model.keras"}

    set_param(repo, "train", "epochs", TINY_PARAMS["train"]["epochs"])  # as run before: restored, not run
    assert repro(repo)["ran"] == set()
    assert "up to date" in dvc(repo, "status")
    assert (repo / "models/model.keras").read_bytes() == model


@pytest.mark.slow
def test_sigterm_stops_the_train_stage_like_ctrl_c(repo: Path):
    before = (repo / "models/model.keras").read_bytes()
    set_param(repo, "train", "epochs", 100_000)
    returncode, log = start_and_interrupt(repo, [sys.executable, "-m", "stages.train"], signal.SIGTERM)
    assert returncode == 1 and log.strip().endswith("train: interrupted, no model written; `dvc repro` trains again")
    # Run outside DVC, nothing removed the old model first: it is still there, whole.
    assert (repo / "models/model.keras").read_bytes() == before
    assert {path.name for path in (repo / "models").iterdir()} <= {".gitignore", "model.keras"}


def test_two_clean_runs_give_identical_bytes_and_dvc_lock(trained_repo, tmp_path: Path):
    first, second = trained_repo.path, make_scratch_repo(tmp_path, TINY_PARAMS)
    dvc(second, "repro")
    # dvc.lock holds the md5 of every output, the model's included: a clean run in a fresh clone leaves it unchanged.
    assert (first / "dvc.lock").read_text() == (second / "dvc.lock").read_text()
    outputs = sorted(
        path.relative_to(first)
        for path in [*first.glob("data/*.npy"), *first.glob("metrics/**/*.*"), first / "models/model.keras"]
    )
    assert len(outputs) > 10
    for output in outputs:
        assert (first / output).read_bytes() == (second / output).read_bytes(), output


def test_plots_render_offline_and_as_pictures(repo: Path):
    dvc(repo, "plots", "show", "-o", "page")
    page = (repo / "page/index.html").read_text()
    assert '<meta charset="utf-8">' in page and "vegaEmbed" in page
    assert not re.search(r"<(script|link)[^>]+(src|href)=", page)  # nothing loaded from elsewhere: works offline
    assert "cdn.jsdelivr" not in page
    written = run(repo, sys.executable, "-m", "stages.pictures")
    pictures = sorted(path.name for path in (repo / "docs/images").iterdir())
    assert len(pictures) == 5 and "one_held_out_sequence_step_by_step.svg" in pictures
    assert all(f"docs/images/{name}" in written for name in pictures)
    assert (repo / "docs/images/held_out_accuracy_by_test_length.svg").read_text().startswith("<svg")


def test_train_reads_training_and_validation_data_only_and_saves_the_selected_member(repo: Path):
    train_deps = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]["train"]["deps"]
    assert not [dep for dep in train_deps if "test" in dep]
    set_param(repo, "train", "population", 3)
    set_param(repo, "train", "epochs", 2)
    for test_file in ("data/test_bits.npy", "data/test_parity.npy"):
        (repo / test_file).unlink()  # train must not need them
    run(repo, sys.executable, "-m", "stages.train")
    metrics = json.loads((repo / "metrics/train/metrics.json").read_text())
    epochs = metrics["member_converged_epochs"].split()  # "-": not converged
    assert metrics["population"] == 3 and len(epochs) == 3
    assert metrics["converged_members"] == sum(epoch != "-" for epoch in epochs)
    assert metrics["selected_member"] in range(3)
    assert (
        str(metrics["converged_epoch"]) == epochs[metrics["selected_member"]]
        or epochs[metrics["selected_member"]] == "-"
    )
    # An ordinary reference-architecture model (anything else is refused), of the member's size.
    assert fused.unflatten(load_trained_model(repo / "models/model.keras").weights)[0].shape == (2, 4)
