from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

import parity_lstm.engines.keras  # noqa: F401  (TensorFlow's defaults, set before any test loads TensorFlow)
from devkit.scratch_repo import commit, dvc
from tests.tiny_pipeline import repo_with_folder_remote, stages_run


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run the tests marked slow, as .ci/run does")


def pytest_configure(config):
    """Compile the kernels into the machine's cache once, before any test process starts: the pipelines the tests run
    in copies of this checkout, and the test processes themselves, then load them."""
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the controller has done it
        return
    from parity_lstm.numerics.precompile import compile_all

    compile_all()


# The longest file: run first, so that one test process starts it at once while the other takes every other file.
LONGEST = "test_cluster.py"


def pytest_collection_modifyitems(config, items):
    """Without --slow (or a -m expression of one's own), leave out the tests marked slow."""
    items.sort(key=lambda item: item.path.name != LONGEST)  # stable: the order within and after it is kept
    if config.getoption("--slow") or config.getoption("markexpr"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    config.hook.pytest_deselected(items=slow)
    items[:] = [item for item in items if not item.get_closest_marker("slow")]


def pytest_terminal_summary(terminalreporter, config):
    if not (config.getoption("--slow") or config.getoption("markexpr")):
        terminalreporter.write_line(
            "Tests marked slow were left out: `python -m pytest --slow` runs them too (.ci/run does)."
        )


# No time limit per example: hypothesis' default (200 ms) makes a verdict depend on the machine's speed and load.
settings.register_profile("any_machine", deadline=None)
settings.load_profile("any_machine")

SHARP = 20.0  # saturates the gates: sigmoid(20) = 1 - 2e-9


def flip_flop_weights() -> list[np.ndarray]:
    """Weights with which the 1-unit model computes running parity exactly, at any length.

    Bit 1 ([1, 0]) closes the forget gate and opens the input gate; the candidate is -sign(h - 0.38), so the
    cell flips between +1 (odd) and -1 (even), starting from 0 (even). Bit 0 ([0, 1]) holds the cell.
    The output reads odd when h = tanh(c) is above 0.38. Keras orders the gates i, f, c, o.
    """
    threshold = 0.38
    kernel = np.array([[SHARP, -SHARP, 0, 0], [-SHARP, SHARP, 0, 0]], np.float32)
    recurrent_kernel = np.array([[0, 0, -SHARP, 0]], np.float32)
    bias = np.array([0, 0, SHARP * threshold, SHARP], np.float32)
    # Slot 0 of the softmax is the probability of parity 1.
    dense_kernel = np.array([[SHARP / 2, -SHARP / 2]], np.float32)
    dense_bias = np.array([-SHARP * threshold / 2, SHARP * threshold / 2], np.float32)
    return [kernel, recurrent_kernel, bias, dense_kernel, dense_bias]


@pytest.fixture(scope="session")
def flip_flop_model():
    """The model as Keras builds it, with hand-set weights that compute parity exactly: a model that is known right."""
    from parity_lstm.engines.keras.oracle import keras_model
    from parity_lstm.model import Layout

    return keras_model(flip_flop_weights(), Layout(1))


@dataclass(frozen=True)
class TrainedRepo:
    path: Path  # a git repo of the pipeline with TINY_PARAMS, run by `dvc repro` and committed; never changed
    first_run: dict[str, set[str]]  # what that first `dvc repro` ran


@pytest.fixture(scope="session")
def trained_repo(tmp_path_factory) -> TrainedRepo:
    """The tiny pipeline, run once for the session: tests that need a run start from a copy of it
    (`tiny_pipeline.copy_of`), so every end-to-end behaviour costs only the stages it changes."""
    root = tmp_path_factory.mktemp("trained")
    repo = repo_with_folder_remote(root / "repo")
    first_run = stages_run(dvc(repo, "repro"))
    commit(repo, "first run")
    return TrainedRepo(repo, first_run)
