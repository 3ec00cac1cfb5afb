"""What each stage's dvc.yaml entry declares is what it runs: exactly the code it imports and the params it reads, so
`dvc repro` reruns a stage when, and only when, something it uses changes; and no module imports a stage."""

import ast
import re
from pathlib import Path

import pytest
import yaml

from devkit.scratch_repo import REPO
from parity_lstm.params import DataParams, EvaluateParams, TargetsParams, TrainParams
from tests.tiny_pipeline import STAGES

FIRST_PARTY = ("stages", "tools", "parity_lstm")


def module_file(name: str) -> Path | None:
    """The file of a first-party module, or None (a third-party module, or a name that is no module)."""
    path = REPO / name.replace(".", "/")
    if name.split(".")[0] not in FIRST_PARTY:
        return None
    return next((file for file in (path.with_suffix(".py"), path / "__init__.py") if file.is_file()), None)


def code_run_by(module: str) -> set[str]:
    """The files that `python -m <module>` runs of this repository: the module, what it imports (at the top or in a
    function, or by name, as `importlib.import_module("parity_lstm.x")`), transitively, with the `__init__.py` of
    every package on the way."""
    found, todo = set(), [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for package in (".".join(parts[:end]) for end in range(1, len(parts))):
            todo.append(package)
        file = module_file(name)
        if file is None or file in found:
            continue
        found.add(file)
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                todo.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                todo.append(node.module)
                todo.extend(f"{node.module}.{alias.name}" for alias in node.names)  # a submodule, if it is one
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and module_file(node.value):
                todo.append(node.value)
    return {str(file.relative_to(REPO)) for file in found}


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_depends_on_exactly_the_code_it_runs(stage):
    deps = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["deps"]
    assert {dep for dep in deps if dep.split("/")[0] in FIRST_PARTY} == code_run_by(f"stages.{stage}")


def test_evaluate_runs_the_forward_pass_and_not_training():
    assert "parity_lstm/numerics/forward.py" in code_run_by("stages.evaluate")
    assert not {"parity_lstm/numerics/backprop.py", "parity_lstm/engines/fused.py"} & code_run_by("stages.evaluate")


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


def test_no_module_imports_a_stage():
    """Stages are leaves that DVC runs: what others share lives in the package, so a stage's deps stay its own."""
    importers = [
        str(path.relative_to(REPO))
        for folder in ("parity_lstm", "stages", "tools", "bench", "devkit", "dags")
        for path in (REPO / folder).rglob("*.py")
        if re.search(r"^\s*(from stages[ .]|import stages\b)", path.read_text(), re.M)
    ]
    assert importers == []
