"""Part `speed`: the reference program's method (bench/reference.py) against this pipeline with the default params.

    python -m bench --parts speed [--repeats 3]

Each pipeline repeat runs a clean `dvc repro` with the defaults in a fresh scratch repo (no DVC cache, no
run-cache) whose fused kernels numba compiles first, as in a fresh clone, and the no-op after it; and a clean run in
a second fresh repo that has numba's cache of them, as every later checkout of the same code on the machine (cold
first or second, in turn); then each stage on its own and `train` with early stopping. The reference program runs
once after each pipeline repeat. Wall times and speed-ups over it: medians of both sides.
"""

import statistics
import subprocess
import sys
from pathlib import Path

from bench.harness import read_json, stage, timed
from bench.population import COMPILE
from bench.scratch_repo import REPO, dvc, make_scratch_repo, run, set_param

# Speed-up over the reference method a clean `dvc repro` with the defaults must reach.
END_TO_END_TARGET = 15
NOOP_LIMIT_S = 1.0
EVALUATE_LIMIT_S = 1.0
PREDICT_LIMIT_S = 1.5
EARLY_STOP_ACCURACY = 0.99
# The reference program's seed: fixed so that its held-out accuracy is the same in every repeat.
REFERENCE_SEED = 2


def measure_pipeline(cold: Path, warm: Path, cold_first: bool) -> dict:
    """One repeat, each clean run in a fresh scratch repo of its own (no DVC cache, no run-cache): end to end with
    the defaults, numba compiling the fused kernels first (a fresh clone), and the no-op after it; end to end with
    numba's cache of them (any later checkout of the same code); then each stage again on its own and the
    early-stop variant."""
    result = {}

    def fresh() -> None:
        result["end_to_end_s"] = timed(dvc, cold, "repro")
        result["noop_s"] = timed(dvc, cold, "repro")

    def cached() -> None:
        result["end_to_end_cached_s"] = timed(dvc, warm, "repro")

    for run_one in (fresh, cached) if cold_first else (cached, fresh):
        run_one()
    return result | measure_stages(cold)


def measure_stages(repo: Path) -> dict:
    result = {
        "held_out": read_json(repo / "metrics/evaluate.json"),
        "data_s": stage(repo, "generate") + stage(repo, "targets"),
        "train_s": stage(repo, "train"),
        "evaluate_s": stage(repo, "evaluate"),
        "predict_s": timed(run, repo, sys.executable, "-m", "stages.predict", "1011001"),
    }
    set_param(repo, "train", "stop_at_accuracy", EARLY_STOP_ACCURACY)
    result["early_stop_train_s"] = stage(repo, "train")
    result["early_stop_epochs"] = read_json(repo / "metrics/train/metrics.json")["step"] + 1
    stage(repo, "evaluate")
    result["early_stop_held_out"] = read_json(repo / "metrics/evaluate.json")
    return result


def measure_baseline(test_bits: Path) -> dict:
    """The reference program, run as a user runs it: in the bench's own environment, without the XLA options
    `train` adds to its own."""
    out = test_bits.with_name("baseline.json")
    command = (sys.executable, "-m", "bench.reference", str(REFERENCE_SEED), str(test_bits), str(out))
    result = {"end_to_end_s": timed(run, REPO, *command)}
    return read_json(out) | result


def speed_table(baseline: dict, pipeline: dict) -> str:
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
            row("data: `generate` + `targets`", baseline["data_s"], pipeline["data_s"]),
            row("`train`: 10 epochs, start-up and compilation included", baseline["train_s"], pipeline["train_s"]),
            row("`evaluate` (8 test lengths up to 10,000)", None, pipeline["evaluate_s"], f"<= {EVALUATE_LIMIT_S} s"),
            row("`python -m stages.predict 1011001`", None, pipeline["predict_s"], f"<= {PREDICT_LIMIT_S} s"),
            row(
                "end to end: clean `dvc repro`, defaults, in a fresh clone (numba compiles the fused kernels)",
                baseline["end_to_end_s"],
                pipeline["end_to_end_s"],
                f">= {END_TO_END_TARGET}x",
            ),
            row(
                "end to end: clean `dvc repro`, defaults, with numba's cache of the kernels",
                baseline["end_to_end_s"],
                pipeline["end_to_end_cached_s"],
                f">= {END_TO_END_TARGET}x",
            ),
            row("no-op `dvc repro`", None, pipeline["noop_s"], f"<= {NOOP_LIMIT_S:.0f} s"),
            row(
                f"`train` until validation final-step accuracy >= {EARLY_STOP_ACCURACY} "
                f"({pipeline['early_stop_epochs']} epochs)",
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


def measure(scratch: Path, repeats: int) -> dict:
    # This checkout's numba cache, which the second repo of each repeat copies: filled here if it is not yet.
    subprocess.run([sys.executable, "-c", COMPILE], cwd=REPO, capture_output=True, check=True)
    runs, baselines = [], []
    for repeat in range(repeats):
        cold = make_scratch_repo(scratch / f"repeat{repeat}", numba_cache=False)
        warm = make_scratch_repo(scratch / f"repeat{repeat}-cached")
        runs.append(measure_pipeline(cold, warm, cold_first=repeat % 2 == 0))
        print(f"pipeline repeat {repeat + 1}/{repeats}: {runs[-1]['end_to_end_s']:.1f} s end to end", flush=True)
        # A baseline run after each pipeline repeat: both sample the same stretches of the machine's drifting speed.
        baselines.append(measure_baseline(scratch / f"repeat{repeat}/data/test_bits.npy"))
        print(f"baseline repeat {repeat + 1}/{repeats}: {baselines[-1]['end_to_end_s']:.1f} s end to end", flush=True)
    baseline, pipeline = median_of(baselines), median_of(runs)
    return {
        "baseline": baseline,
        "baseline_repeats": baselines,
        "pipeline_median": pipeline,
        "pipeline_repeats": runs,
        "table": speed_table(baseline, pipeline),
    }
