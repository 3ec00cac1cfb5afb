"""Benchmark: the reference program's method against this pipeline with the default params, in one run.

    python bench/benchmark.py [--repeats 3] [--out bench/results.json]

Prints a table of wall times, speed-ups over the baseline and held-out accuracy, and writes it to JSON.
Each pipeline repeat runs in a fresh scratch repo (no DVC cache, no run-cache); the table shows medians.
The baseline (bench/reference.py, ~3 minutes) runs once.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # so that `python bench/benchmark.py` finds the project's packages

from tests.scratch_repo import dvc, make_scratch_repo, run, set_param  # noqa: E402

TARGETS = {"data": 50, "train": 12, "end_to_end": 10}
NOOP_LIMIT_S = 2.0
EARLY_STOP_ACCURACY = 0.99


def timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def stage(repo: Path, name: str) -> float:
    return timed(run, repo, sys.executable, "-m", f"stages.{name}")


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def measure_pipeline(repo: Path) -> dict:
    """One repeat: clean end to end, no-op, then each stage again on its own, then the early-stop variant."""
    result = {
        "end_to_end_s": timed(dvc, repo, "repro"),
        "noop_s": timed(dvc, repo, "repro"),
        "held_out": read_json(repo / "metrics/evaluate.json"),
        "data_s": stage(repo, "generate") + stage(repo, "targets"),
        "train_s": stage(repo, "train"),
    }
    set_param(repo, "train", "stop_at_accuracy", EARLY_STOP_ACCURACY)
    result["early_stop_train_s"] = stage(repo, "train")
    result["early_stop_epochs"] = read_json(repo / "metrics/train/metrics.json")["step"] + 1
    stage(repo, "evaluate")
    result["early_stop_held_out"] = read_json(repo / "metrics/evaluate.json")
    return result


def measure_baseline(test_bits: Path) -> dict:
    out = test_bits.with_name("baseline.json")
    result = {"end_to_end_s": timed(run, ROOT, sys.executable, "-m", "bench.reference", "2", str(test_bits), str(out))}
    return json.loads(out.read_text()) | result


def table(baseline: dict, pipeline: dict) -> str:
    def row(label, base, ours, target=""):
        speedup = f"{base / ours:.1f}x" if base else "-"
        base_text = f"{base:.2f} s" if base else "-"
        return f"| {label} | {base_text} | {ours:.2f} s | {speedup} | {target} |"

    held_out = pipeline["held_out"]["final_step_accuracy"]
    early_held_out = pipeline["early_stop_held_out"]["final_step_accuracy"]
    return "\n".join(
        [
            "| step | baseline | pipeline | speed-up | target |",
            "| --- | --- | --- | --- | --- |",
            row("data: `generate` + `targets`", baseline["data_s"], pipeline["data_s"], f">= {TARGETS['data']}x"),
            row(
                "`train`: 10 epochs, start-up and compilation included",
                baseline["train_s"],
                pipeline["train_s"],
                f">= {TARGETS['train']}x",
            ),
            row(
                "end to end: clean `dvc repro`",
                baseline["end_to_end_s"],
                pipeline["end_to_end_s"],
                f">= {TARGETS['end_to_end']}x",
            ),
            row("no-op `dvc repro`", None, pipeline["noop_s"], f"<= {NOOP_LIMIT_S:.0f} s"),
            row(
                f"`train` until training accuracy >= {EARLY_STOP_ACCURACY} ({pipeline['early_stop_epochs']} epochs)",
                baseline["train_s"],
                pipeline["early_stop_train_s"],
            ),
            "",
            f"Held-out final-step accuracy: baseline {baseline['held_out']['final_step_accuracy']:.4f}, "
            f"pipeline {held_out:.4f}, pipeline with early stop {early_held_out:.4f}.",
        ]
    )


def median_of(runs: list[dict]) -> dict:
    """Median of every timing; accuracies are the same in every repeat (seeded), so the first is kept."""
    merged = dict(runs[0])
    for key in [key for key in merged if key.endswith("_s")]:
        merged[key] = statistics.median(run[key] for run in runs)
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="pipeline repeats (median is reported)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        runs = []
        for repeat in range(args.repeats):
            repo = make_scratch_repo(Path(scratch) / f"repeat{repeat}")
            runs.append(measure_pipeline(repo))
            print(
                f"pipeline repeat {repeat + 1}/{args.repeats}: {runs[-1]['end_to_end_s']:.1f} s end to end", flush=True
            )
        print("baseline (about 3 minutes) ...", flush=True)
        baseline = measure_baseline(Path(scratch) / "repeat0/data/test_bits.npy")

    pipeline = median_of(runs)
    report = table(baseline, pipeline)
    print(report)
    args.out.write_text(
        json.dumps(
            {
                "machine": {
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                    "tensorflow": version("tensorflow-cpu"),
                    "keras": version("keras"),
                    "dvc": version("dvc"),
                },
                "baseline": baseline,
                "pipeline_median": pipeline,
                "pipeline_repeats": runs,
                "table": report,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
