"""Part `reproducibility`: the default run's `train` and `evaluate` under every XLA instruction-set ceiling this CPU
allows, oneDNN on and off, and 1 and all intra-op threads, on the same data: model md5, final training loss,
held-out metrics and the md5s of the files each run writes.

    python -m bench --parts reproducibility
"""

import hashlib
import itertools
import os
from pathlib import Path

from bench.harness import cpu_info, environment, read_json, stage
from bench.scratch_repo import dvc, make_scratch_repo

# XLA's instruction-set ceilings (`--xla_cpu_max_isa`) from the oldest up; "host": no ceiling, all this CPU has.
ISA_LEVELS = ("SSE4_2", "AVX", "AVX2", "AVX512", "host")
# The CPU flag each ceiling needs: a ceiling above what the CPU has would change nothing.
ISA_FLAGS = {"SSE4_2": "sse4_2", "AVX": "avx", "AVX2": "avx2", "AVX512": "avx512f"}


def file_md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def outputs(repo: Path) -> dict:
    """What one `train` and `evaluate` wrote: the model's and files' md5s and the metrics."""
    plots = sorted((repo / "metrics/train/plots").rglob("*.tsv"))
    return {
        "model_md5": file_md5(repo / "models/model.keras"),
        "train_metrics": read_json(repo / "metrics/train/metrics.json"),
        "train_plots_md5": {str(path.relative_to(repo)): file_md5(path) for path in plots},
        "evaluate": read_json(repo / "metrics/evaluate.json"),
        "evaluate_md5": file_md5(repo / "metrics/evaluate.json"),
        "evaluate_states_md5": file_md5(repo / "metrics/evaluate_states.csv"),
    }


def measure(scratch: Path) -> dict:
    """`train` and `evaluate` with the defaults under each XLA instruction-set ceiling the CPU supports, oneDNN on and
    off, and 1 and the default number of intra-op threads, on the same data: what each run's outputs are."""
    repo = make_scratch_repo(scratch / "reproducibility")
    dvc(repo, "repro", "targets")
    flags = cpu_info()["flags"]
    levels = [level for level in ISA_LEVELS if level == "host" or ISA_FLAGS[level] in flags]
    runs = []
    for level, onednn, threads in itertools.product(levels, ("0", "1"), (None, "1")):
        # The ceiling joins the bench's own XLA_FLAGS; `train` adds its options to these.
        xla_flags = os.environ.get("XLA_FLAGS", "")
        if level != "host":
            xla_flags = f"{xla_flags} --xla_cpu_max_isa={level}".strip()
        with environment(XLA_FLAGS=xla_flags or None, TF_ENABLE_ONEDNN_OPTS=onednn, TF_NUM_INTRAOP_THREADS=threads):
            train_s = stage(repo, "train")
            stage(repo, "evaluate")
        settings = {"isa": level, "onednn": onednn == "1", "intra_op_threads": int(threads or os.cpu_count())}
        runs.append(settings | {"train_s": train_s} | outputs(repo))
        print(f"{level}, oneDNN {onednn}, threads {threads or 'default'}: {runs[-1]['model_md5']}", flush=True)
    lines = [
        "| XLA ISA ceiling | oneDNN | intra-op threads | model md5 | final training loss | evaluate.json md5 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for figures in runs:
        lines.append(
            f"| {figures['isa']} | {'on' if figures['onednn'] else 'off'} | {figures['intra_op_threads']} "
            f"| `{figures['model_md5'][:8]}` | {figures['train_metrics']['train']['loss']!r} "
            f"| `{figures['evaluate_md5'][:8]}` |"
        )
    return {"runs": runs, "table": "\n".join(lines)}
