"""The environment the keras engine sets up for TensorFlow and XLA, checked in processes of their own: XLA reads its
flags once a process, and TensorFlow logs its start-up lines as it loads."""

import hashlib
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from devkit.scratch_repo import REPO

pytestmark = pytest.mark.slow  # each test starts TensorFlow in fresh processes


ONE_KERNEL_OFF = "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=0"


def train_and_digest(xla_options: str, cache: Path) -> tuple[str, str]:
    """The digest of members trained in a process of their own, with `xla_options` added to XLA_FLAGS as the
    environment has it (a run under `--xla_cpu_max_isa=...` keeps its ceiling) and the persistent XLA cache `cache`;
    and the training step as XLA compiled it (empty if it came from the cache)."""
    dump = cache.parent / f"dump_{hashlib.sha256(xla_options.encode()).hexdigest()[:8]}"
    environment = {
        "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_dump_to={dump} {xla_options}".strip(),
        "TF_XLA_FLAGS": f"--tf_xla_persistent_cache_directory={cache}",
        "PYTHONPATH": str(REPO),
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.keras_engine_digest"],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    compiled = "".join(path.read_text() for path in dump.glob("*one_step_on_data*cpu_after_optimizations.txt"))
    return result.stdout.split()[-1], compiled


def cache_entries(cache: Path) -> dict[str, set[str]]:
    """The persistent cache's executables: {file-name prefix: the graph keys (the rest of the name) under it}."""
    entries = defaultdict(set)
    for path in cache.iterdir():
        prefix, key = path.name.split("__", 1)
        entries[prefix].add(key)
    return entries


def test_one_kernel_loops_train_the_same_weights_and_cache_under_a_name_of_their_own(tmp_path: Path):
    """The keras engine has XLA compile each small recurrent loop into one kernel (its speed-up); threshold 0 turns
    that off. 1-unit members train to the same bytes either way, so the runs behind docs/results.md stay reproduced.

    TensorFlow keys its opt-in persistent cache by the compiled graph, not by XLA_FLAGS (on some CPUs a run handed
    the executables compiled under other options trained to other bytes); the engine's XLA options
    (parity_lstm/engines/keras/xla.py) name the options in the cache's file names. Shown from XLA's dumps and the
    cache's files, whatever the CPU."""
    cache = tmp_path / "cache"
    off_digest, off_compiled = train_and_digest(ONE_KERNEL_OFF, cache)
    assert "while" in off_compiled, "no training step was dumped"
    assert "xla_cpu_small_call" not in off_compiled
    loops_off = cache_entries(cache)
    assert len(loops_off) == 1, "nothing was cached"

    # With the stage's options the same graphs compile anew, into one kernel each, and are stored under a name of
    # their own: not read from what the other options compiled.
    digest, compiled = train_and_digest("", cache)
    assert "xla_cpu_small_call" in compiled, "not compiled with the one-kernel loops: read from the cache?"
    assert digest == off_digest
    entries = cache_entries(cache)
    default = {prefix: keys for prefix, keys in entries.items() if prefix not in loops_off}
    assert default, "the default run stored nothing: it read the executables compiled with the loops off"
    assert list(default.values()) == list(loops_off.values()), "not the same graphs: the test shows nothing"
    assert entries == loops_off | default, "the default run changed the other options' entries"
    # The name is the options': a second run with them finds its entries and stores nothing new.
    assert train_and_digest("", cache)[0] == digest
    assert cache_entries(cache) == entries


def test_tensorflow_starts_without_start_up_lines_and_still_shows_its_warnings():
    """On CPUs with AVX-512 VNNI or AMX, TensorFlow turns oneDNN on and announces it in absl lines; the keras engine
    turns it off by default. TF_ENABLE_ONEDNN_OPTS=1 turns it on on any CPU, so the announcement is seen, whatever
    the CPU."""

    def stderr(**environment: str) -> str:
        # The defaults the keras engine sets, unless the environment given sets them.
        unset = {"TF_ENABLE_ONEDNN_OPTS", "TF_CPP_MIN_LOG_LEVEL"}
        env = {name: value for name, value in os.environ.items() if name not in unset}
        env |= {"PYTHONPATH": str(REPO), **environment}
        result = subprocess.run(
            [sys.executable, "-m", "tests.start_tensorflow"], env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        return result.stderr

    announced = stderr(TF_ENABLE_ONEDNN_OPTS="1")
    assert "oneDNN custom operations are on" in announced, "the announcement to hide did not show"
    assert stderr().splitlines() == ["WARNING:tensorflow:a warning from TensorFlow"]
