"""Stage `train`: a population of models (parity_lstm.model), a recurrent cell (`train.cell`) of `train.units` units,
an output every step, into Dense(2, softmax), fit on per-step parity; the member that does best on the validation set
is saved as models/model.keras, and every member, in member order, as models/members.npy (what `evaluate` scores
member by member).

input  [[1,0] [0,1] [1,0]]     bits 1 0 1, each as the pair [x, 1-x]
target [[1,0] [1,0] [0,1]]     running parity 1 1 0, paired the same way

With `train.population: 1` (the default) this is the reference experiment: one model from `train.seed`.
`train.engine` picks who trains: `fused` (the default) or `keras` (TensorFlow) (parity_lstm/engines). Both start from
the same weights, see the same batches and are validated by the same forward pass.
"""

import signal

import numpy as np
from dvclive import Live

from parity_lstm.data.files import (
    METRICS_DIR,
    TRAIN_BITS,
    TRAIN_LOSS_FACTORS,
    TRAIN_PARITY,
    VAL_BITS,
    VAL_PARITY,
    load_bits,
    load_loss_factors,
    load_parity,
)
from parity_lstm.model import Layout, save_members, save_model
from parity_lstm.params import TrainParams, load_params
from parity_lstm.rates import CONVERGED
from parity_lstm.training import Trained, converged_epochs, train

# Significant digits of the logged training loss: its later digits follow the weights' last bits, and an epoch's
# mean loss means nothing finer.
LOSS_DIGITS = 4


def log_epoch(live: Live, loss: float, accuracy: np.ndarray) -> None:
    """Per-epoch figures to dvclive that stay readable for any population size."""
    live.log_metric("train/loss", float(f"{loss:.{LOSS_DIGITS}g}"))
    live.log_metric("val/best_final_step_accuracy", float(accuracy.max()))
    live.log_metric("val/converged_share", float((accuracy >= CONVERGED).mean()))
    live.next_step()


def log_results(live: Live, trained: Trained, params: TrainParams) -> None:
    """The selected member's validation curve and the population's summary."""
    last_step = live.step
    for step, accuracy in enumerate(trained.val_accuracy[:, trained.selected]):
        live.step = step
        live.log_metric("val/selected_final_step_accuracy", float(accuracy))
    live.step = last_step
    epochs = converged_epochs(trained.val_accuracy)
    live.summary |= {
        "population": params.population,
        "converged_members": sum(epoch is not None for epoch in epochs),
        "selected_member": trained.selected,
        "converged_epoch": epochs[trained.selected],
        # A string: `dvc exp show` drops lists and nulls from metrics. "-": not converged.
        "member_converged_epochs": " ".join("-" if epoch is None else str(epoch) for epoch in epochs),
    }


def main() -> None:
    # SIGTERM (`kill`, a job scheduler) stops training the way Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    params = load_params("train", TrainParams)
    bits = load_bits(TRAIN_BITS)
    parity, loss_factors = load_parity(TRAIN_PARITY, bits), load_loss_factors(TRAIN_LOSS_FACTORS, bits)
    val_bits = load_bits(VAL_BITS)
    val_parity = load_parity(VAL_PARITY, val_bits)
    try:
        # One dvclive directory for this stage; dvc.yaml declares its files, so dvclive must not edit dvc.yaml.
        with Live(dir=str(METRICS_DIR / "train"), dvcyaml=False, save_dvc_exp=False) as live:
            trained = train(
                bits, parity, loss_factors, val_bits, val_parity, params, lambda *epoch: log_epoch(live, *epoch)
            )
            log_results(live, trained, params)  # written as Live ends
        layout = Layout(params.units, params.cell)
        save_model(layout.unflatten(trained.members[trained.selected]), layout)
        save_members(trained.members)
    except KeyboardInterrupt:
        raise SystemExit("train: interrupted, no model written; `dvc repro` trains again") from None


if __name__ == "__main__":
    main()
