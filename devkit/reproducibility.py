"""Part `reproducibility` of the benchmark, a check that times nothing: the default run's `train` and `evaluate` (the
fused engine) with numba compiling for each CPU target of CPU_NAMES, on the same data: model md5, final training loss,
held-out metrics and the md5s of the files each run writes. Each target compiles into a kernel cache of its own.

    python -m bench --parts reproducibility
"""

import hashlib
import json
import sys
from pathlib import Path

from devkit.scratch_repo import dvc, make_scratch_repo, run
from devkit.settings import environment

# The CPUs numba compiles the fused kernels for (NUMBA_CPU_NAME): the oldest x86-64, AVX2 (Haswell), AVX-512
# (Skylake-X) and whatever this CPU has ("host"). Not other CPUs: the same CPU running code built for each.
CPU_NAMES = ("generic", "haswell", "skylake-avx512", "host")


def file_md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def outputs(repo: Path) -> dict:
    """What one `train` and `evaluate` wrote: the model's and files' md5s and the metrics."""
    plots = sorted((repo / "metrics/train/plots").rglob("*.tsv"))
    return {
        "model_md5": file_md5(repo / "models/model.keras"),
        "train_metrics": json.loads((repo / "metrics/train/metrics.json").read_text()),
        "train_plots_md5": {str(path.relative_to(repo)): file_md5(path) for path in plots},
        "evaluate": json.loads((repo / "metrics/evaluate.json").read_text()),
        "evaluate_md5": file_md5(repo / "metrics/evaluate.json"),
        "evaluate_states_md5": file_md5(repo / "metrics/evaluate_states.csv"),
    }


def measure(scratch: Path) -> dict:
    """`train` and `evaluate` with the defaults, the kernels compiled for each of CPU_NAMES, on the same data: what
    each run's outputs are. (Threads: tests/test_fused.py; the default population of 1 runs on one.)"""
    repo = make_scratch_repo(scratch / "reproducibility")
    dvc(repo, "repro", "targets")
    runs = []
    for cpu in CPU_NAMES:
        target = (
            {} if cpu == "host" else {"NUMBA_CPU_NAME": cpu, "PARITY_LSTM_CACHE_DIR": str(scratch / f"cache-{cpu}")}
        )
        with environment(**target):
            for stage in ("train", "evaluate"):
                run(repo, sys.executable, "-m", f"stages.{stage}")
        runs.append({"cpu_name": cpu} | outputs(repo))
        print(f"{cpu}: {runs[-1]['model_md5']}", flush=True)
    return {"runs": runs}


def table(result: dict) -> str:
    lines = [
        "| numba CPU target | model md5 | final training loss | evaluate.json md5 | evaluate_states.csv md5 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for figures in result["runs"]:
        lines.append(
            f"| {figures['cpu_name']} | `{figures['model_md5'][:8]}` | {figures['train_metrics']['train']['loss']!r} "
            f"| `{figures['evaluate_md5'][:8]}` | `{figures['evaluate_states_md5'][:8]}` |"
        )
    return "\n".join(lines)
