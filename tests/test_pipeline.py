"""The real `dvc repro` on throw-away copies of the pipeline with tiny params, judged by DVC's own messages."""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

from devkit.scratch_repo import REPO, dvc, make_scratch_repo, pipeline_environment, run, set_param
from parity_lstm.data.encoding import PAD, one_hot_pairs
from parity_lstm.data.files import (
    TRAIN_BITS,
    TRAIN_LOSS_FACTORS,
    TRAIN_PARITY,
    VAL_BITS,
    VAL_PARITY,
    load_bits,
    load_loss_factors,
    load_parity,
)
from parity_lstm.model import Layout, initial_weights, save_model
from parity_lstm.params import DataParams, TargetsParams, TrainParams, load_params
from parity_lstm.trained import load_trained_model
from tests.conftest import flip_flop_weights
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


def test_a_no_op_runs_nothing_and_params_run_before_are_restored_from_the_run_cache(repo: Path):
    """Which stages a change reruns, for every param: tests/test_reruns.py."""
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


def test_an_edit_to_the_training_numerics_reruns_train_and_skips_evaluate_as_the_model_is_the_same(repo: Path):
    """`evaluate` depends on the forward pass, not on backpropagation: a comment in the training numerics reruns
    `train` (its kernels compile anew), which writes the same model, so `evaluate` is skipped."""
    model = (repo / "models/model.keras").read_bytes()
    with (repo / "parity_lstm/numerics/backprop.py").open("a") as module:
        module.write("# an edit\n")
    assert repro(repo) == ran_exactly("train")
    assert (repo / "models/model.keras").read_bytes() == model


def test_default_params_are_the_reference_experiment():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert DataParams(**params["data"]).model_dump(include={"seq_len", "count"}) == {"seq_len": 50, "count": 100_000}
    reference = {
        "engine": "fused",
        "cell": "lstm",
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
    before = {path.name: path.read_bytes() for path in (repo / "models").iterdir()}
    set_param(repo, "train", "epochs", 100_000)
    returncode, log = start_and_interrupt(repo, [sys.executable, "-m", "stages.train"], signal.SIGTERM)
    assert returncode == 1 and log.strip().endswith("train: interrupted, no model written; `dvc repro` trains again")
    # Run outside DVC, nothing removed the old model and members first: they are still there, whole.
    assert {path.name: path.read_bytes() for path in (repo / "models").iterdir()} == before
    assert set(before) == {".gitignore", "model.keras", "members.npy"}


def test_the_default_run_trains_the_committed_model_byte_for_byte(tmp_path: Path):
    """However the kernels are called and whatever they cost, the reference experiment trains the model committed in
    dvc.lock."""
    repo = make_scratch_repo(tmp_path)
    dvc(repo, "repro", "train")
    locked = yaml.safe_load((REPO / "dvc.lock").read_text())["stages"]["train"]["outs"]
    models = {out["path"]: out["md5"] for out in locked if out["path"].startswith("models/")}
    assert models.keys() == {"models/model.keras", "models/members.npy"}
    for path, md5 in models.items():
        assert hashlib.md5((repo / path).read_bytes()).hexdigest() == md5, path


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
    written = run(repo, sys.executable, "-m", "tools.pictures")
    pictures = sorted(path.name for path in (repo / "docs/images").glob("*.svg"))
    assert len(pictures) == 5 and "one_held_out_sequence_step_by_step.svg" in pictures
    # Each picture, and beside it the spec with the data it draws.
    for name in pictures:
        spec = (repo / "docs/images" / name).with_suffix(".json")
        assert f"docs/images/{name}" in written and f"docs/images/{spec.name}" in written
        assert json.loads(spec.read_text())["data"]["values"]
    assert (repo / "docs/images/held_out_accuracy_by_test_length.svg").read_text().startswith("<svg")


@pytest.fixture(scope="module")
def footprints(trained_repo, tmp_path_factory) -> dict[str, dict]:
    """What each stage and `predict` read and imported, run in a copy of the tiny run (tests/stage_footprint.py)."""
    repo = copy_of(trained_repo.path, tmp_path_factory.mktemp("footprints") / "repo")
    env = pipeline_environment() | {"PYTHONPATH": str(REPO)}  # `tests` from here; `stages` from the copy
    commands = {stage: [f"stages.{stage}"] for stage in STAGES} | {"predict": ["tools.predict", "1011"]}
    found = {}
    for name, command in commands.items():
        result = subprocess.run(
            [sys.executable, "-m", "tests.stage_footprint", *command], cwd=repo, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        found[name] = json.loads(result.stdout.splitlines()[-1])
    return found


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_opens_exactly_the_data_its_dvc_yaml_deps_name(footprints: dict, stage: str):
    """What a stage reads is what DVC watches: `train` never opens the test set, `evaluate` never the validation set,
    and a file a stage reads is never missing from its deps (DVC would not rerun the stage when the file changes)."""
    declared = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["deps"]
    assert set(footprints[stage]["read"]) == {dep for dep in declared if dep.split("/")[0] in ("data", "models")}


@pytest.mark.parametrize("command", [*STAGES, "predict"])
def test_the_default_path_never_loads_tensorflow_or_keras(footprints: dict, command: str):
    assert {"tensorflow", "keras"}.isdisjoint(footprints[command]["packages"])
    assert "numpy" in footprints[command]["packages"]  # the list is the real one


def test_predict_of_a_short_string_never_loads_numba(footprints: dict):
    """It runs stepwise (parity_lstm/numerics/stepwise.py): numba's start is most of what a short run would cost."""
    assert "numba" not in footprints["predict"]["packages"]
    assert "numba" in footprints["evaluate"]["packages"]  # the list names numba where it is loaded


def test_evaluate_scores_the_test_set(repo: Path):
    """A model that always says "even" is right on every step of a test set of zeros; on the validation set, random
    bits, it would be right about half the time."""
    weights = initial_weights(0, Layout(1))
    weights[3][:] = 0  # the Dense kernel: the output ignores the state
    weights[4][:] = [0.0, 1.0]  # logits (odd, even): P(odd) = sigmoid(-1)
    save_model(weights, Layout(1), repo / "models/model.keras")
    zeros = np.zeros((TINY_PARAMS["data"]["test_count"], TINY_PARAMS["data"]["seq_len"]), np.uint8)
    np.save(repo / "data/test_bits.npy", zeros)
    np.save(repo / "data/test_parity.npy", zeros)  # the running parity of zeros
    val_odd = np.load(repo / "data/val_parity.npy")[:, -1].mean()
    assert 0.2 < val_odd < 0.8  # the validation set would score far from 1
    run(repo, sys.executable, "-m", "stages.evaluate")
    metrics = json.loads((repo / "metrics/evaluate.json").read_text())
    assert metrics["step_accuracy"] == metrics["final_step_accuracy"] == metrics["sequence_accuracy"] == 1.0


def test_train_selects_the_member_best_on_validation_and_saves_it(repo: Path, monkeypatch):
    """Member 1 of 3 starts as the flip-flop, exactly right at any length, the others from their seeds: it ends best
    on validation, converged from epoch 1, and is the model saved, with the weights training gave it."""
    import parity_lstm.training as training
    import stages.train as train_stage

    set_param(repo, "train", "population", 3)
    set_param(repo, "train", "epochs", 2)
    seeded = training.initial_members

    def with_flip_flop(*args) -> np.ndarray:
        members = seeded(*args)
        members[1] = Layout(1).flatten(flip_flop_weights())
        return members

    monkeypatch.setattr(training, "initial_members", with_flip_flop)
    monkeypatch.chdir(repo)
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        train_stage.main()
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    metrics = json.loads(Path("metrics/train/metrics.json").read_text())
    epochs = metrics["member_converged_epochs"].split()
    assert (metrics["population"], metrics["selected_member"], metrics["converged_epoch"]) == (3, 1, 1)
    assert epochs[1] == "1" and metrics["converged_members"] == sum(epoch != "-" for epoch in epochs)
    assert metrics["val"]["selected_final_step_accuracy"] == 1.0

    # The same training in this process: the saved file holds member 1's trained weights, byte for byte.
    bits = load_bits(TRAIN_BITS)
    val_bits = load_bits(VAL_BITS)
    trained = training.train(
        bits, load_parity(TRAIN_PARITY, bits), load_loss_factors(TRAIN_LOSS_FACTORS, bits), val_bits,
        load_parity(VAL_PARITY, val_bits), load_params("train", TrainParams),
    )  # fmt: skip
    saved = load_trained_model(Path("models/model.keras")).weights
    assert saved.tobytes() == trained.members[1].tobytes()
    assert not any(np.array_equal(saved, trained.members[k]) for k in (0, 2))


def test_the_trained_model_file_opens_in_keras_with_the_outputs_evaluate_scores(trained_repo):
    """What a user gets from `keras.saving.load_model("models/model.keras")`: the reference model, whose outputs are
    the ones `evaluate` and `predict` compute without Keras."""
    path = trained_repo.path / "models/model.keras"
    opened = keras.saving.load_model(path)
    assert [type(layer).__name__ for layer in opened.layers] == ["LSTM", "Dense"]
    bits = np.random.default_rng(0).integers(0, 2, (100, 40), dtype=np.uint8)
    bits[:30, :20] = PAD  # padding in front, as data.min_len makes it
    ours = load_trained_model(path).probability_of_one(bits).T
    np.testing.assert_allclose(ours, opened.predict(one_hot_pairs(bits), verbose=0)[..., 0], rtol=0, atol=1e-6)
