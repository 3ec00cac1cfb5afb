"""Part `mutation` of the benchmark, a check that times nothing: mutation testing of the modules that decide results,
with cosmic-ray. Run only when named.

    python -m bench --parts mutation

Each module of MODULES is mutated, one mutant at a time, in a clone of this commit of its own (cosmic-ray edits the
file in place; two modules run at once), and the tests that cover it run against every mutant; a mutant the tests do
not fail survived. The score is the share killed. A survivor is listed with its reason from devkit/mutation.toml when
a reason says why no test can tell it apart (an equivalent mutant); any other survivor is listed as open.

Operators: every one of cosmic-ray's, except a binary operator replaced by one of another family (arithmetic, bitwise):
on floats numba refuses it to compile, and nobody types `|` for `+`; a removed decorator (without `@njit` a kernel
computes the same, slowly); `~` and `not` for a minus sign. A module's tests take seconds to minutes a mutant (a
mutated kernel compiles anew) and the modules hold about a thousand mutants: SAMPLE of each module's, drawn with a
fixed seed, stand for the rest (all of a module with fewer), and each score comes with its 95 % Wilson interval.
"""

import random
import re
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from devkit.scratch_repo import REPO, run
from parity_lstm.rates import wilson

# module: the tests that cover it, run against each mutant (in its own process: numba compiles a mutant kernel anew).
MODULES = {
    "parity_lstm/data/encoding.py": "tests/test_targets.py tests/test_generate.py",
    "parity_lstm/params.py": "tests/test_params.py",
    "parity_lstm/data/sampling.py": "tests/test_generate.py",
    "parity_lstm/data/loss.py": "tests/test_targets.py tests/test_generate.py",
    "stages/evaluate.py": "tests/test_evaluate.py",
    "parity_lstm/model.py": "tests/test_model.py",
    "parity_lstm/scoring.py": "tests/test_evaluate.py",
    "parity_lstm/numerics/forward.py": "tests/test_evaluate.py tests/test_numerics.py -k 'forward or half'",
}
FAMILIES = (("Add", "Sub", "Mul", "Div", "FloorDiv", "Mod", "Pow"), ("BitOr", "BitAnd", "BitXor", "LShift", "RShift"))
SAMPLE, SAMPLE_SEED = 30, 0
# Seconds a mutant's tests may run before it counts as killed (a mutant that hangs, as an infinite loop).
TIMEOUT_S = 300
EQUIVALENT = Path(__file__).with_name("mutation.toml")


def excluded(operator: str) -> bool:
    """The operators left out (the module's docstring says why)."""
    if operator == "core/RemoveDecorator" or re.fullmatch(r"core/ReplaceUnaryOperator_\w+_(Invert|Not)", operator):
        return True
    binary = re.fullmatch(r"core/ReplaceBinaryOperator_(\w+)_(\w+)", operator)
    return bool(binary) and not any({binary[1], binary[2]} <= set(family) for family in FAMILIES)


def mutant_id(mutation) -> str:
    """A survivor's name, stable while its module's lines are: module:line:column operator."""
    line, column = mutation.start_pos
    return f"{mutation.module_path}:{line}:{column} {mutation.operator_name}"


def mutate(scratch: Path, module: str) -> list[dict]:
    """SAMPLE mutants of `module` and whether its tests killed each."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    clone = scratch / module.replace("/", "_")
    run(scratch, "git", "clone", "--quiet", str(REPO), str(clone))
    # A cache of its own: each mutant of a kernel compiles into it, never into the machine's.
    test_command = (
        f"env PARITY_LSTM_CACHE_DIR={clone / 'kernel-cache'} {sys.executable} -m pytest -x -q -n 0 "
        f"-p no:cacheprovider {MODULES[module]}"
    )
    config = clone / "cosmic-ray.toml"
    config.write_text(
        f'[cosmic-ray]\nmodule-path = "{module}"\ntimeout = {TIMEOUT_S}\nexcluded-modules = []\n'
        f'test-command = "{test_command}"\n\n[cosmic-ray.distributor]\nname = "local"\n'
    )
    session = str(clone / "session.sqlite")
    cosmic_ray = [sys.executable, "-m", "cosmic_ray.cli"]
    subprocess.run([*cosmic_ray, "init", str(config), session], cwd=clone, check=True, capture_output=True)
    with use_db(session, WorkDB.Mode.open) as db:
        # In the order of the source, not the database's: the same draw every time.
        items = sorted(
            (item for item in db.pending_work_items if not excluded(item.mutations[0].operator_name)),
            key=lambda item: (
                item.mutations[0].start_pos,
                item.mutations[0].operator_name,
                item.mutations[0].occurrence,
            ),
        )
        chosen = random.Random(SAMPLE_SEED).sample(items, min(SAMPLE, len(items)))
        left_out = {item.job_id for item in db.pending_work_items} - {item.job_id for item in chosen}
        db.set_multiple_results(left_out, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output="left out"))
    subprocess.run([*cosmic_ray, "exec", str(config), session], cwd=clone, check=True, capture_output=True)
    with use_db(session, WorkDB.Mode.open) as db:
        return [
            {"mutant": mutant_id(item.mutations[0]), "killed": result.is_killed, "diff": result.diff}
            for item, result in db.completed_work_items
            if result.worker_outcome != WorkerOutcome.SKIPPED
        ]


def equivalent() -> dict[str, str]:
    """Each survivor that no test can tell apart, with why: devkit/mutation.toml."""
    return tomllib.loads(EQUIVALENT.read_text())["equivalent"] if EQUIVALENT.exists() else {}


def measure(scratch: Path, store) -> dict:
    reasons = equivalent()
    modules = {}
    with ThreadPoolExecutor(2) as pool:
        for module, mutants in zip(MODULES, pool.map(lambda module: mutate(scratch, module), MODULES), strict=True):
            modules[module] = mutants
            print(f"{module}: {sum(mutant['killed'] for mutant in mutants)}/{len(mutants)} killed", flush=True)
            store(result := summary(modules, reasons))
    return result


def summary(modules: dict[str, list[dict]], equivalent: dict[str, str]) -> dict:
    lines = [
        "| module | mutants drawn | killed (95 % interval) | equivalent | open |",
        "| --- | --- | --- | --- | --- |",
    ]
    survivors = {}
    for module, mutants in modules.items():
        alive = [mutant["mutant"] for mutant in mutants if not mutant["killed"]]
        survivors |= {mutant: equivalent.get(mutant, "open") for mutant in alive}
        reasoned = sum(mutant in equivalent for mutant in alive)
        killed = score(len(mutants) - len(alive), len(mutants))
        lines.append(f"| `{module}` | {len(mutants)} | {killed} | {reasoned} | {len(alive) - reasoned} |")
    every = [mutant["killed"] for mutants in modules.values() for mutant in mutants]
    lines.append(f"| all | {len(every)} | {score(sum(every), len(every))} | | |")
    lines.append("\nThe equivalent survivors, each with why no test can tell it apart: `devkit/mutation.toml`.")
    return {"modules": modules, "survivors": survivors, "table": "\n".join(lines)}


def score(killed: int, mutants: int) -> str:
    low, high = wilson(killed, mutants)
    return f"{killed} ({low:.2f}-{high:.2f})"
