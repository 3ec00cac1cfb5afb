"""Part `speed`: what a run costs, against the reference program's method (bench/reference.py), in one run.

    python -m bench --parts speed [--repeats 2]

Each repeat runs every contender once, in an order that reverses from one repeat to the next, so that the machine's
drifting speed hits each alike; every repeat is stored, and each ratio is taken within the run:
- the reference program, end to end;
- a clean `dvc repro` with the defaults in a fresh copy of the pipeline on a machine that never ran it (an empty
  kernel cache: the kernels compile), in a fresh copy with the machine's cache, and again in that copy
  (`dvc repro --force`); the no-op `dvc repro` after them;
- each stage on its own (`train` with its peak memory), `predict` of one string, every kernel's cold compile.
"""

import statistics
import sys
from collections.abc import Callable
from pathlib import Path

from bench.harness import measured, read_json, stage, timed
from devkit.scratch_repo import REPO, dvc, kernels_ready, make_scratch_repo, run
from devkit.settings import environment

# Targets for 2 cores (issues 31 and 40): speed-ups of a clean `dvc repro` over the reference program, seconds, MiB.
WARM_CACHE_SPEEDUP, EMPTY_CACHE_SPEEDUP = 20, 10
TRAIN_S, EVALUATE_S, PREDICT_S, COMPILE_S, TRAIN_RSS_MIB = 2.0, 0.6, 0.3, 6.0, 250
# The reference program's seed: fixed so that its held-out accuracy is the same in every repeat.
REFERENCE_SEED = 2


def reference(scratch: Path) -> dict:
    """The reference program, as a user runs it, scored on a test set of the pipeline's (not timed)."""
    test_bits, out = scratch / "test_bits.npy", scratch / "reference.json"
    if not test_bits.exists():
        repo = make_scratch_repo(scratch / "reference-data")
        dvc(repo, "repro", "generate")
        (repo / "data/test_bits.npy").rename(test_bits)
    command = (sys.executable, "-m", "bench.reference", str(REFERENCE_SEED), str(test_bits), str(out))
    return {"end_to_end_s": timed(run, REPO, *command)} | read_json(out)


def pipeline(scratch: Path) -> dict:
    """Clean runs with an empty kernel cache, with the machine's cache, forced again; the no-op; each stage."""
    with environment(PARITY_LSTM_CACHE_DIR=str(scratch / "empty-cache")):
        empty = make_scratch_repo(scratch / "empty-cache-repo")
        result = {"empty_cache_s": timed(dvc, empty, "repro")}
    warm = make_scratch_repo(scratch / "warm-cache-repo")
    result |= {
        "warm_cache_fresh_clone_s": timed(dvc, warm, "repro"),
        "warm_repo_s": timed(dvc, warm, "repro", "--force"),
        "noop_s": timed(dvc, warm, "repro"),
        "held_out": read_json(warm / "metrics/evaluate.json"),
        "data_s": stage(warm, "generate") + stage(warm, "targets"),
        "train": measured(warm, sys.executable, "-m", "stages.train"),
        "evaluate_s": stage(warm, "evaluate"),
        "predict_s": timed(run, warm, sys.executable, "-m", "tools.predict", "1011001"),
    }
    with environment(PARITY_LSTM_CACHE_DIR=str(scratch / "compile-cache")):
        result["compile_s"] = kernels_ready()["seconds"]
    return result


def measure(scratch: Path, repeats: int) -> dict:
    contenders: dict[str, Callable[[Path], dict]] = {"reference": reference, "pipeline": pipeline}
    repeats_run = []
    for repeat in range(repeats):
        order = list(contenders) if repeat % 2 == 0 else list(reversed(contenders))
        results = {}
        for name in order:
            results[name] = contenders[name](scratch / f"repeat{repeat}" / name)
            print(f"repeat {repeat + 1}/{repeats}: {name} done", flush=True)
        repeats_run.append({"order": order} | results)
    return {"repeats": repeats_run, "table": table(repeats_run)}


def dig(result: dict, keys: tuple[str, ...]) -> float:
    for key in keys:
        result = result[key]
    return result


def median(repeats: list[dict], *keys: str) -> float:
    return statistics.median(dig(one, keys) for one in repeats)


def ratio(repeats: list[dict], numerator: tuple[str, ...], denominator: tuple[str, ...]) -> float:
    """The median over repeats of each repeat's own ratio."""
    return statistics.median(dig(one, numerator) / dig(one, denominator) for one in repeats)


def table(repeats: list[dict]) -> str:
    reference_s = median(repeats, "reference", "end_to_end_s")

    def row(label: str, keys: tuple[str, ...], target: str, speedup: float | None = None, met: bool | None = None):
        seconds = ", ".join(f"{dig(one, keys):.2f}" for one in repeats)
        speedup_text = f"{speedup:.1f}x" if speedup else "-"
        verdict = "" if met is None else (" met" if met else " **missed**")
        return f"| {label} | {seconds} s | {speedup_text} | {target}{verdict} |"

    pipeline = ("pipeline",)
    rows = [
        "| what | each repeat | speed-up over the reference (median of repeats) | target |",
        "| --- | --- | --- | --- |",
        row("the reference program, end to end", ("reference", "end_to_end_s"), ""),
    ]
    for label, key, target in (
        ("clean `dvc repro`, fresh copy, empty kernel cache", "empty_cache_s", EMPTY_CACHE_SPEEDUP),
        ("clean `dvc repro`, fresh copy, the machine's kernel cache", "warm_cache_fresh_clone_s", WARM_CACHE_SPEEDUP),
        ("`dvc repro --force` in that copy", "warm_repo_s", WARM_CACHE_SPEEDUP),
    ):
        speedup = ratio(repeats, ("reference", "end_to_end_s"), (*pipeline, key))
        rows.append(row(label, (*pipeline, key), f">= {target}x", speedup, speedup >= target))
    for label, keys, limit in (
        ("no-op `dvc repro`", ("noop_s",), None),
        ("`generate` + `targets`", ("data_s",), None),
        ("`train`, 10 epochs", ("train", "wall_s"), TRAIN_S),
        ("`evaluate` (8 test lengths to 10,000)", ("evaluate_s",), EVALUATE_S),
        ("`python -m tools.predict 1011001`", ("predict_s",), PREDICT_S),
        ("every kernel's cold compile", ("compile_s",), COMPILE_S),
    ):
        met = None if limit is None else median(repeats, *pipeline, *keys) <= limit
        rows.append(row(label, (*pipeline, *keys), f"<= {limit} s" if limit else "", met=met))
    rss = median(repeats, "pipeline", "train", "peak_rss_mib")
    held_out = repeats[0]["pipeline"]["held_out"]["final_step_accuracy"]
    reference_held_out = repeats[0]["reference"]["held_out"]["final_step_accuracy"]
    return "\n".join(
        [
            *rows,
            "",
            f"`train` peak resident memory {rss:.0f} MiB (target <= {TRAIN_RSS_MIB} MiB: "
            f"{'met' if rss <= TRAIN_RSS_MIB else '**missed**'}).",
            f"Held-out final-step accuracy: reference {reference_held_out:.4f}, pipeline {held_out:.4f}. The reference "
            f"program took {reference_s:.0f} s (median).",
        ]
    )
