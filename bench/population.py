"""Part `population`: seconds per epoch of `train`'s population of K 1-unit members at the default size, validation
of every member included, with each engine: `fused` on one thread and on two, `keras` (TensorFlow + XLA); and the
fused engine's training step alone (forward, backpropagation, Adam; no validation, no batching) against two floors on
the same shape of batches: devkit/floor.py's, under the engine's rules (its bits), and the floor probe's, which has
none of them, whose file --floor-probe names (it is not in this repository).

    python -m bench --parts population [--floor-probe ../shared/probes/population_floor.py]

Trained in this process on the default training and validation data, the contenders alternated within each K.
"""

import re
import statistics
import sys
import time
from functools import partial
from itertools import pairwise
from pathlib import Path

from bench.harness import default_data, timed, training_environment
from devkit.scratch_repo import REPO, run
from devkit.settings import threads

POPULATIONS = (1, 20, 100)
# (name, train.engine, the fused engine's threads at most), run in this order at each K.
ENGINES = (("fused, 1 thread", "fused", 1), ("fused, 2 threads", "fused", 2), ("keras", "keras", 2))
# Epoch 1 includes building the members (and Keras' compiling): the median of the later ones is the steady cost.
EPOCHS = {"fused": 4, "keras": 3}
# Seconds per epoch the fused engine must reach at K = 1 (two cores, validation included); at K = 100 its training
# step must be within FLOOR_RATIO of the floor under its rules.
EPOCH_TARGET_K1, FLOOR_RATIO = 0.08, 1.3
# The training step alone: batches of BATCH rows of 50 random bits, timed on STEP_BATCHES and scaled to an epoch of
# EPOCH_BATCHES, as the floor probe times its own.
BATCH, STEP_BATCHES, EPOCH_BATCHES = 128, 40, 782


def epoch_seconds(arrays, params: dict, engine: str, members: int) -> list[float]:
    """Wall seconds of each epoch, validation included."""
    from parity_lstm.params import TrainParams
    from parity_lstm.training import train

    ends = [time.perf_counter()]
    run = TrainParams(**params["train"] | {"engine": engine, "population": members, "epochs": EPOCHS[engine]})
    train(*arrays, run, lambda loss, accuracy: ends.append(time.perf_counter()))
    return [end - start for start, end in pairwise(ends)]


def step_seconds(members: int) -> dict[str, float]:
    """The training step alone (gradients and Adam, 2 threads at most), seconds per epoch: the fused engine's and
    the floor's under its rules, alternated, the best of 3 each."""
    import numpy as np

    from devkit.floor import floor_train_batches
    from parity_lstm.model import Layout, initial_members
    from parity_lstm.numerics.backprop import Adam, train_batches

    bits = np.random.default_rng(0).integers(0, 2, (STEP_BATCHES * BATCH, 50), dtype=np.uint8)
    arrays = bits, np.bitwise_xor.accumulate(bits, axis=-1), np.ones(bits.shape, np.float32)
    batches = np.arange(len(bits)).reshape(STEP_BATCHES, BATCH)
    steps = {"engine": partial(train_batches, layout=Layout(1)), "floor": floor_train_batches}
    adams = {name: Adam(initial_members(0, members, Layout(1)), 0.001) for name in steps}
    seconds = {name: [] for name in steps}
    with threads(2):
        for _ in range(4):  # a warm-up, then the timed ones
            for name, step in steps.items():
                seconds[name].append(timed(step, adams[name], arrays, list(batches)) / STEP_BATCHES * EPOCH_BATCHES)
    return {name: min(each[1:]) for name, each in seconds.items()}


def floor_seconds(probe: Path, members: int) -> float:
    """The floor probe's training step (its `numba-rational`, the same arithmetic), seconds per epoch."""
    command = [sys.executable, str(probe), "--members", str(members), "--batches", str(STEP_BATCHES)]
    output = run(REPO, *command, "--impls", "numba-rational", "--no-check")
    (line,) = [line for line in output.splitlines() if re.match(rf"\s*{members}\s+numba-rational", line)]
    return float(line.split()[2])


def measure(scratch: Path, floor_probe: Path | None) -> dict:
    runs, steps, floors = {}, {}, {}
    with training_environment():
        params, arrays = default_data()
        for members in POPULATIONS:
            for name, engine, count in ENGINES:
                with threads(count):
                    seconds = epoch_seconds(arrays, params, engine, members)
                runs[f"{members} {name}"] = seconds
                print(f"population {members}, {name}: epochs {', '.join(f'{s:.2f}' for s in seconds)} s", flush=True)
            steps[members] = step_seconds(members)
            if floor_probe:
                floors[members] = floor_seconds(floor_probe, members)
            print(f"population {members}: training step {steps[members]}, probe {floors.get(members)}", flush=True)
    steady = {key: statistics.median(seconds[1:]) for key, seconds in runs.items()}
    return {"runs": runs, "steady_s": steady, "step_s": steps, "floor_s": floors}


def table(result: dict) -> str:
    """Seconds per epoch by K and engine, the training step against both floors, each against its target."""
    steady, steps = result["steady_s"], {int(k): v for k, v in result["step_s"].items()}
    probes = {int(k): v for k, v in result["floor_s"].items()}
    lines = [
        "| members K | `fused`, 1 thread | `fused`, 2 threads | `keras` (TensorFlow + XLA) | `keras` / best `fused` "
        "| `fused` training step alone | floor, same rules | step / floor | floor probe's | step / probe |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for members in POPULATIONS:
        one, two, keras = (steady[f"{members} {name}"] for name, _, _ in ENGINES)
        engine, floor, probe = steps[members]["engine"], steps[members]["floor"], probes.get(members)
        lines.append(
            f"| {members} | {one:.3f} s | {two:.3f} s | {keras:.2f} s | {keras / min(one, two):.1f}x "
            f"| {engine:.3f} s | {floor:.3f} s | {engine / floor:.2f} | "
            + (f"{probe:.3f} s | {engine / probe:.2f} |" if probe else "- | - |")
        )
    best_one = min(steady[f"1 {name}"] for name, engine, _ in ENGINES if engine == "fused")
    ratio = steps[100]["engine"] / steps[100]["floor"]
    lines.append(
        f"\nSeconds per epoch (median of epochs 2 on), validation of every member included. K = 1, best fused: "
        f"{best_one:.3f} s (target <= {EPOCH_TARGET_K1} s: {'met' if best_one <= EPOCH_TARGET_K1 else '**missed**'}).\n"
        f"K = 100, training step / floor under the same rules: {ratio:.2f} (target <= {FLOOR_RATIO}: "
        f"{'met' if ratio <= FLOOR_RATIO else '**missed**'})."
    )
    return "\n".join(lines)
