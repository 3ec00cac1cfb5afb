"""Part `population`: seconds per epoch of `train`'s population of K 1-unit members at the default size, for each
K of POPULATIONS, trained in this process on the default training and validation data.

    python -m bench --parts population
"""

import statistics
import time
from pathlib import Path

from bench.harness import default_data, training_environment

POPULATIONS = (1, 4, 20, 100)
# Epoch 1 includes compiling: the median of the later ones is the steady cost, so there must be some.
POPULATION_EPOCHS = 3


def measure(scratch: Path) -> dict:
    """Seconds per epoch (the median of epochs 2 on) for each of POPULATIONS; `scratch` is not used (no files)."""
    with training_environment():
        import keras

        from stages.params import TrainParams
        from stages.train import train

        class EpochTimes(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.times = []

            def on_epoch_begin(self, epoch, logs=None):
                self.started = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.times.append(time.perf_counter() - self.started)

        params, arrays = default_data()
        result = {}
        for members in POPULATIONS:
            train_params = TrainParams(**params["train"] | {"population": members, "epochs": POPULATION_EPOCHS})
            timer = EpochTimes()
            started = time.perf_counter()
            train(*arrays, train_params, callbacks=[timer])
            result[members] = {"epochs_s": timer.times, "total_s": time.perf_counter() - started}
            print(f"population {members}: epochs {', '.join(f'{t:.1f}' for t in timer.times)} s", flush=True)
    one = statistics.median(result[1]["epochs_s"][1:])
    lines = [
        "| members K | seconds per epoch | x one member | seconds per member-epoch |",
        "| --- | --- | --- | --- |",
    ]
    for members, figures in result.items():
        epoch = statistics.median(figures["epochs_s"][1:])
        lines.append(f"| {members} | {epoch:.2f} | {epoch / one:.1f} | {epoch / members:.3f} |")
    return {"runs": result, "table": "\n".join(lines)}
