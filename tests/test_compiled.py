"""The kernels compile once per machine (parity_lstm.numerics.compiled): every checkout of the same source shares the
cache; a cache that cannot be written or read costs a compile and one line on stderr, never a failure."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from devkit.scratch_repo import REPO, checkout_environment, kernels_ready, make_scratch_repo, run
from devkit.settings import environment
from parity_lstm.model import Layout, save_model
from parity_lstm.numerics import compiled
from parity_lstm.trained import STEPWISE_STEPS
from tests.conftest import flip_flop_weights


def test_a_second_fresh_clone_compiles_nothing(tmp_path: Path):
    origin = make_scratch_repo(tmp_path / "origin")
    cache = tmp_path / "cache"
    for clone in ("first", "second"):
        run(tmp_path, "git", "clone", "--quiet", str(origin), clone)
    with environment(PARITY_LSTM_CACHE_DIR=str(cache)):
        first, second = (kernels_ready(tmp_path / clone) for clone in ("first", "second"))
    assert (len(first["loaded"]), len(first["compiled"]), first["cache"]) == (0, 2, str(cache))
    assert (len(second["loaded"]), len(second["compiled"])) == (2, 0)
    assert not list((tmp_path / "second").rglob("*.nb[ic]"))  # nothing compiled beside the second clone's code


# Each layout's probabilities of one on the same bits, as cached kernels give them, layouts named on the command line.
FORWARD_SUMS = """
import sys
from parity_lstm.model import Layout, initial_members
from parity_lstm.numerics.forward import probability_of_one
from tests.arrays import padded_batch

bits = padded_batch(300, 20, 0)[0]
layouts = [Layout(1, cell) for cell in sys.argv[1:]]
print(*(repr(probability_of_one(initial_members(0, 2, layout), bits, layout).sum()) for layout in layouts))
"""


def test_two_layouts_cached_by_two_processes_each_run_their_own_kernel_in_a_third(tmp_path: Path):
    """numba names machine code after the function and a count of its own process: the same closure built for two
    layouts, cached by two processes, must not share a name, or a process that loads both runs one for both."""

    def sums(*cells: str) -> list[str]:
        command = [sys.executable, "-c", FORWARD_SUMS, *cells]
        env = checkout_environment() | {"PARITY_LSTM_CACHE_DIR": str(tmp_path)}
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    alone = sums("lstm") + sums("gru")  # each compiled and cached by a process of its own
    assert sums("lstm", "gru") == alone and alone[0] != alone[1]


def predict(folder: Path, cache: Path) -> subprocess.CompletedProcess:
    """`python -m tools.predict` of a string long enough to run on the kernels (shorter ones run stepwise) and a short
    one, with the flip-flop model, the kernel cache folder `cache`."""
    command = [sys.executable, "-m", "tools.predict", "1" * (STEPWISE_STEPS + 1), "0110"]
    env = checkout_environment() | {"PARITY_LSTM_CACHE_DIR": str(cache)}
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [line.split("\t")[1] for line in done.stdout.splitlines()] == ["1", "0"]  # right, whatever the cache
    return done


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    save_model(flip_flop_weights(), Layout(1), tmp_path / "models/model.keras")
    return tmp_path


def test_a_cache_folder_that_cannot_be_written_costs_a_compile_and_one_line(folder: Path):
    (folder / "a file").write_text("")
    stderr = predict(folder, folder / "a file/cache").stderr
    assert stderr.splitlines() == [
        f"parity-lstm: cannot write to the kernel cache {folder / 'a file/cache'} (Not a directory); "
        "compiling in this process instead"
    ]


def test_a_truncated_cache_entry_costs_a_compile_and_one_line_and_is_written_anew(folder: Path):
    cache = folder / "cache"
    assert predict(folder, cache).stderr == ""  # compiled and saved
    entries = list(cache.rglob("*.nb[ic]"))
    assert entries
    for entry in entries:
        entry.write_bytes(entry.read_bytes()[:40])  # an interrupted copy
    assert predict(folder, cache).stderr.splitlines() == [
        f"parity-lstm: cannot read a kernel from the cache {cache} (UnpicklingError); compiling in this process instead"
    ]
    assert predict(folder, cache).stderr == ""  # the fresh compile was saved in its place


def test_the_cache_key_names_every_module_the_kernels_import():
    """numba keys a cache entry by the kernel's own file; COMPILED_IN adds what the kernels import from the package
    (offsets, PAD, options, the forward helpers the training kernels call), so a change to any of them compiles anew."""
    imports = {}  # each module of numerics/: the package modules it imports from
    for path in (Path(compiled.__file__).parent).glob("*.py"):
        found = [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom)]
        imports[path.name] = {node.module: {alias.name for alias in node.names} for node in found if node.module}
    kernel_files = [
        name for name, found in imports.items() if "kernel" in found.get("parity_lstm.numerics.compiled", ())
    ]
    assert sorted(kernel_files) == ["backprop.py", "forward.py"]

    def file_of(module: str) -> str:
        return module.removeprefix("parity_lstm.").replace(".", "/") + ".py"

    package = Path(compiled.__file__).parents[1]
    imported = {  # `from a.b import c` imports module a.b, or a.b.c where c is a module
        file_of(f"{module}.{alias}") if (package / file_of(f"{module}.{alias}")).is_file() else file_of(module)
        for name in kernel_files
        for module, aliases in imports[name].items()
        if module.startswith("parity_lstm.")
        for alias in aliases
    }
    assert imported == set(compiled.COMPILED_IN)
