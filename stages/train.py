"""Stage `train`: the reference model, LSTM(units, per-step outputs) -> Dense(2, softmax), fit on per-step parity.

    input  [[1,0] [0,1] [1,0]]     bits 1 0 1, each as the pair [x, 1-x]
    target [[1,0] [1,0] [0,1]]     running parity 1 1 0, paired the same way
"""

import sys

import keras
from dvclive import Live
from dvclive.keras import DVCLiveCallback

from stages.common import (
    METRICS_DIR,
    TRAIN_BITS,
    TRAIN_PARITY,
    TrainParams,
    load_array,
    load_params,
    one_hot_pairs,
    save_model,
)

# Run this many batches per call into the XLA-compiled step: the per-batch Python overhead dominates otherwise.
STEPS_PER_EXECUTION = 64


def build_model(units: int, learning_rate: float) -> keras.Model:
    """The reference architecture; the time axis is left open so any sequence length can be fed."""
    model = keras.Sequential(
        [
            keras.Input((None, 2)),
            keras.layers.LSTM(units, return_sequences=True),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
        jit_compile=True,
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    return model


def train(bits, parity, params: TrainParams, callbacks=()) -> keras.Model:
    """Fit a fresh model; the same params and data give the same weights."""
    keras.utils.set_random_seed(params.seed)
    model = build_model(params.units, params.learning_rate)
    model.fit(
        one_hot_pairs(bits),
        one_hot_pairs(parity),
        epochs=params.epochs,
        batch_size=params.batch_size,
        callbacks=list(callbacks),
        # A live bar on a terminal; one line per epoch in logs (dvc repro, CI).
        verbose=1 if sys.stdout.isatty() else 2,
    )
    return model


def main() -> None:
    params = load_params("train", TrainParams)
    bits, parity = load_array(TRAIN_BITS), load_array(TRAIN_PARITY)
    # One dvclive directory for this stage; dvc.yaml declares its files, so dvclive must not edit dvc.yaml.
    with Live(dir=str(METRICS_DIR / "train"), dvcyaml=False, save_dvc_exp=False) as live:
        model = train(bits, parity, params, callbacks=[DVCLiveCallback(live=live)])
    save_model(model)


if __name__ == "__main__":
    main()
