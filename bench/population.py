"""Part `population`: seconds per epoch of `train`'s population of K 1-unit members at the default size, validation
of every member included, with each engine: `fused` on one thread and on two, `keras` (TensorFlow + XLA); and the
fused kernels' compile time, cold and from numba's cache.

    python -m bench --parts population

Trained in this process on the default training and validation data, the engines alternated within each K.
"""

import statistics
import time
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path

from bench.harness import default_data, environment, training_environment
from bench.scratch_repo import kernels_ready

POPULATIONS = (1, 20, 100)
# (name, train.engine, the fused engine's threads at most), run in this order at each K.
ENGINES = (("fused, 1 thread", "fused", 1), ("fused, 2 threads", "fused", 2), ("keras", "keras", 2))
# Epoch 1 includes building the members (and Keras' compiling): the median of the later ones is the steady cost.
EPOCHS = {"fused": 4, "keras": 3}
# Seconds per epoch the fused engine must reach at each K (two cores, validation included).
TARGETS = {1: 0.2, 20: 1.5, 100: 6.0}


@contextmanager
def threads(count: int):
    """The fused engine's threads at most (what NUMBA_NUM_THREADS sets for a process)."""
    import numba

    before, numba.config.NUMBA_NUM_THREADS = numba.config.NUMBA_NUM_THREADS, count
    try:
        yield
    finally:
        numba.config.NUMBA_NUM_THREADS = before


def epoch_seconds(arrays, params: dict, engine: str, members: int) -> list[float]:
    """Wall seconds of each epoch, validation included."""
    from parity_lstm.params import TrainParams
    from stages.train import train

    ends = [time.perf_counter()]
    run = TrainParams(**params["train"] | {"engine": engine, "population": members, "epochs": EPOCHS[engine]})
    train(*arrays, run, lambda loss, accuracy: ends.append(time.perf_counter()))
    return [end - start for start, end in pairwise(ends)]


def compile_seconds(scratch: Path) -> dict:
    """Every kernel's first call (`python -m parity_lstm.numerics.precompile`) on a machine whose cache is empty:
    compiled (cold), then loaded from the cache the first run wrote (warm); each in a process of its own."""
    with environment(PARITY_LSTM_CACHE_DIR=str(scratch / "empty-cache")):
        cold, warm = (kernels_ready()["seconds"] for _ in "ab")
    return {"cold_s": cold, "warm_s": warm}


def measure(scratch: Path) -> dict:
    compiled = compile_seconds(scratch)
    print(f"fused kernels: {compiled['cold_s']:.1f} s cold, {compiled['warm_s']:.2f} s from the cache", flush=True)
    runs = {}
    with training_environment():
        params, arrays = default_data()
        for members in POPULATIONS:
            for name, engine, count in ENGINES:
                with threads(count):
                    seconds = epoch_seconds(arrays, params, engine, members)
                runs[f"{members} {name}"] = seconds
                print(f"population {members}, {name}: epochs {', '.join(f'{s:.2f}' for s in seconds)} s", flush=True)
    steady = {key: statistics.median(seconds[1:]) for key, seconds in runs.items()}
    lines = [
        "| members K | `fused`, 1 thread | `fused`, 2 threads | `keras` (TensorFlow + XLA) | `keras` / best `fused` "
        "| target |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for members in POPULATIONS:
        one, two, keras = (steady[f"{members} {name}"] for name in ("fused, 1 thread", "fused, 2 threads", "keras"))
        lines.append(
            f"| {members} | {one:.3f} s | {two:.3f} s | {keras:.2f} s | {keras / min(one, two):.1f}x | "
            f"<= {TARGETS[members]} s |"
        )
    lines.append(
        "\nSeconds per epoch (median of epochs 2 on), validation of every member included. The fused kernels' "
        f"first calls in a fresh checkout: {compiled['cold_s']:.1f} s compiling, {compiled['warm_s']:.2f} s from "
        "numba's cache."
    )
    return {"runs": runs, "steady_s": steady, "compile": compiled, "table": "\n".join(lines)}
