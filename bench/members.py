"""Part `members`: tuning evidence for the selection rule. A population of MEMBERS (seeds 0 to MEMBERS - 1, the
reference settings) trained in this process; per member, its validation final-step accuracy and its final-step
accuracy on FRESH_SEQUENCES fresh sequences of length FRESH_LENGTH from a stream no stage draws (not the test set).

    python -m bench --parts members
"""

from pathlib import Path

from bench.harness import default_data, training_environment

MEMBERS = 100
# Fresh sequences far longer than training's, from a seed of their own: no stage draws this stream.
FRESH_LENGTH, FRESH_SEQUENCES, FRESH_STREAM = 10_000, 1_000, 987_654


def measure(scratch: Path) -> dict:
    """Per member of a population of MEMBERS (the default params but `train.population`): does a perfect score on
    the validation set at the training length go with holding at length FRESH_LENGTH? `scratch` is not used."""
    with training_environment():
        import keras
        import numpy as np

        from stages.convergence import HOLDS
        from stages.encoding import running_parity
        from stages.params import TrainParams
        from stages.train import CONVERGED, Validation, train

        params, arrays = default_data()
        trained = train(*arrays, TrainParams(**params["train"] | {"population": MEMBERS, "seed": 0}))
        fresh = np.random.default_rng([FRESH_STREAM, FRESH_LENGTH]).integers(
            0, 2, (FRESH_SEQUENCES, FRESH_LENGTH), dtype=np.uint8
        )
        scorer = Validation(fresh, running_parity(fresh))
        scorer.set_model(keras.Sequential([keras.Input((None, 2)), trained.population]))
        scorer.on_train_begin()
        at_length, validation = scorer.accuracy(), trained.val_accuracy[-1]
    converged, holds, perfect = validation >= CONVERGED, at_length >= HOLDS, validation == 1.0
    figures = {
        "converged": int(converged.sum()),
        "converged_and_hold": int((converged & holds).sum()),
        "converged_not_hold": int((converged & ~holds).sum()),
        "not_hold_at_validation_1": int((converged & ~holds & perfect).sum()),
        "hold_at_validation_1": int((holds & perfect).sum()),
    }
    table = (
        f"Members of one population of {MEMBERS} (seeds 0-{MEMBERS - 1}): {figures['converged']} converged on "
        f"validation; of those, {figures['converged_and_hold']} hold >= {HOLDS} at length {FRESH_LENGTH} on fresh "
        f"sequences and {figures['converged_not_hold']} do not; validation accuracy 1.0: "
        f"{figures['hold_at_validation_1']} of those that hold, {figures['not_hold_at_validation_1']} of those that "
        "do not."
    )
    members = {"validation": validation.tolist(), "at_length": at_length.tolist()}
    return {"figures": figures, "members": members, "table": table}
