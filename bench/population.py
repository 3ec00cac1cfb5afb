"""Part `population`: seconds per epoch of `train`'s population of K 1-unit members at the default size, validation
of every member included, with each engine: `fused` on one thread and on two, `keras` (TensorFlow + XLA); and the
fused engine's training step alone (forward, backpropagation, Adam; no validation, no batching) against the floor
probe's, whose file --floor-probe names (it is not in this repository), on the same shape of batches.

    python -m bench --parts population [--floor-probe ../shared/probes/population_floor.py]

Trained in this process on the default training and validation data, the contenders alternated within each K.
"""

import re
import statistics
import sys
import time
from itertools import pairwise
from pathlib import Path

from bench.harness import default_data, training_environment
from devkit.scratch_repo import REPO, run
from devkit.settings import threads

POPULATIONS = (1, 20, 100)
# (name, train.engine, the fused engine's threads at most), run in this order at each K.
ENGINES = (("fused, 1 thread", "fused", 1), ("fused, 2 threads", "fused", 2), ("keras", "keras", 2))
# Epoch 1 includes building the members (and Keras' compiling): the median of the later ones is the steady cost.
EPOCHS = {"fused": 4, "keras": 3}
# Seconds per epoch the fused engine must reach at K = 1 (two cores, validation included; issue 40); at K = 100 its
# training step must be within FLOOR_RATIO of the floor probe's.
EPOCH_TARGET_K1, FLOOR_RATIO = 0.08, 1.1
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


def step_seconds(members: int) -> float:
    """The fused training step alone (gradients and Adam, 2 threads at most), seconds per epoch."""
    import numpy as np

    from parity_lstm.model import Layout, initial_members
    from parity_lstm.numerics.backprop import Adam, gradients

    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, (STEP_BATCHES, BATCH, 50), dtype=np.uint8)
    parity, factors = np.bitwise_xor.accumulate(bits, axis=-1), np.ones((BATCH, 50), np.float32)
    layout = Layout(1)
    adam = Adam(initial_members(0, members, layout), 0.001)
    with threads(2):
        for timed_batches in (2, STEP_BATCHES):  # a warm-up, then the timed ones
            started = time.perf_counter()
            for batch in range(timed_batches):
                adam.apply(gradients(adam.members, bits[batch], parity[batch], factors, layout)[0])
    return (time.perf_counter() - started) / STEP_BATCHES * EPOCH_BATCHES


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
            print(
                f"population {members}: training step {steps[members]:.3f} s, floor {floors.get(members)}", flush=True
            )
    steady = {key: statistics.median(seconds[1:]) for key, seconds in runs.items()}
    return {"runs": runs, "steady_s": steady, "step_s": steps, "floor_s": floors}


def table(result: dict) -> str:
    """Seconds per epoch by K and engine, the training step against the floor probe's, each against its target."""
    steady, steps = result["steady_s"], {int(k): v for k, v in result["step_s"].items()}
    floors = {int(k): v for k, v in result["floor_s"].items()}
    lines = [
        "| members K | `fused`, 1 thread | `fused`, 2 threads | `keras` (TensorFlow + XLA) | `keras` / best `fused` "
        "| `fused` training step alone | floor probe's | step / floor |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for members in POPULATIONS:
        one, two, keras = (steady[f"{members} {name}"] for name, _, _ in ENGINES)
        floor = floors.get(members)
        floor_text = f"{floor:.3f} s | {steps[members] / floor:.2f}" if floor else "- | -"
        lines.append(
            f"| {members} | {one:.3f} s | {two:.3f} s | {keras:.2f} s | {keras / min(one, two):.1f}x "
            f"| {steps[members]:.3f} s | {floor_text} |"
        )
    best_one = min(steady[f"1 {name}"] for name, engine, _ in ENGINES if engine == "fused")
    lines.append(
        f"\nSeconds per epoch (median of epochs 2 on), validation of every member included. K = 1, best fused: "
        f"{best_one:.3f} s (target <= {EPOCH_TARGET_K1} s: {'met' if best_one <= EPOCH_TARGET_K1 else '**missed**'})."
    )
    if 100 in floors:
        ratio = steps[100] / floors[100]
        lines.append(
            f"K = 100, training step / floor probe's: {ratio:.2f} (target <= {FLOOR_RATIO}: "
            f"{'met' if ratio <= FLOOR_RATIO else '**missed**'})."
        )
    return "\n".join(lines)
