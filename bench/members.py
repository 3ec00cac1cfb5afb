"""Part `members`: tuning evidence for the selection rule, and the two engines side by side. A population of MEMBERS
(seeds 0 to MEMBERS - 1, the reference settings) trained in this process by each engine, `fused` then `keras`; per
member, its validation final-step accuracy and its final-step accuracy on FRESH_SEQUENCES fresh sequences of
length FRESH_LENGTH from a stream no stage draws (not the test set). Which members converge must agree between the
engines for at least AGREEMENT of them.

    python -m bench --parts members
"""

import json
from pathlib import Path

import numpy as np

from bench.harness import default_data, training_environment
from bench.scratch_repo import REPO, run
from parity_lstm.data.encoding import running_parity
from parity_lstm.model import Layout
from parity_lstm.params import TrainParams
from stages.convergence import HOLDS, wilson
from stages.train import CONVERGED, Validation, train

MEMBERS = 100
AGREEMENT = 98
# The last commit whose initial weights Keras drew: its stored result is the rate beside which this one stands.
KERAS_WEIGHTS_REV = "cc7933d"
# Fresh sequences far longer than training's, from a seed of their own: no stage draws this stream.
FRESH_LENGTH, FRESH_SEQUENCES, FRESH_STREAM = 10_000, 1_000, 987_654


def measure(scratch: Path) -> dict:
    """Per engine, a population of MEMBERS (the default params but `train.population` and `train.engine`): which
    members converge, and does a perfect score on the validation set at the training length go with holding at
    length FRESH_LENGTH? `scratch` is not used."""
    with training_environment():
        params, arrays = default_data()
        fresh = np.random.default_rng([FRESH_STREAM, FRESH_LENGTH]).integers(
            0, 2, (FRESH_SEQUENCES, FRESH_LENGTH), dtype=np.uint8
        )
        members = {}
        for engine in ("fused", "keras"):
            settings = TrainParams(**params["train"] | {"population": MEMBERS, "seed": 0, "engine": engine})
            trained = train(*arrays, settings)
            members[engine] = {
                "validation": trained.val_accuracy[-1].tolist(),
                "at_length": Validation(fresh, running_parity(fresh), Layout(settings.units, settings.cell))
                .accuracy(trained.members)
                .tolist(),
            }
    figures = {engine: member_figures(**runs) for engine, runs in members.items()}
    # The same seeds from the initial weights Keras drew (keras.utils.set_random_seed), as stored at KERAS_WEIGHTS_REV.
    before = json.loads(run(REPO, "git", "show", f"{KERAS_WEIGHTS_REV}:bench/results/members.json", stderr=False))
    fused, keras = (np.array(members[engine]["validation"]) >= CONVERGED for engine in ("fused", "keras"))
    differ = np.flatnonzero(fused != keras).tolist()
    lines = [
        f"Members of one population of {MEMBERS} (seeds 0-{MEMBERS - 1}), each engine:",
        "",
        "| engine | converged on validation | 95 % interval | of those, hold >= "
        f"{HOLDS} at length {FRESH_LENGTH} | do not | validation 1.0 among those that hold | among those that do not |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows = [(f"`{engine}`", f) for engine, f in figures.items()]
    rows += [
        (f"`{engine}`, Keras' initial weights (`{KERAS_WEIGHTS_REV}`)", f) for engine, f in before["figures"].items()
    ]
    for label, f in rows:
        low, high = wilson(f["converged"], MEMBERS)
        lines.append(
            f"| {label} | {f['converged']}/{MEMBERS} | {low:.2f}-{high:.2f} | {f['converged_and_hold']} | "
            f"{f['converged_not_hold']} | {f['hold_at_validation_1']} | {f['not_hold_at_validation_1']} |"
        )
    lines.append(
        f"\nThe engines agree on which members converge for {MEMBERS - len(differ)} of {MEMBERS} (at least "
        f"{AGREEMENT} required); they differ on seeds {', '.join(map(str, differ)) or 'none'}."
    )
    return {
        "figures": figures,
        "keras_initial_weights": {"rev": KERAS_WEIGHTS_REV, "figures": before["figures"]},
        "members": members,
        "agree": MEMBERS - len(differ),
        "differ": differ,
        "table": "\n".join(lines),
    }


def member_figures(validation: list[float], at_length: list[float]) -> dict:
    validation, at_length = np.array(validation), np.array(at_length)
    converged, holds, perfect = validation >= CONVERGED, at_length >= HOLDS, validation == 1.0
    return {
        "converged": int(converged.sum()),
        "converged_and_hold": int((converged & holds).sum()),
        "converged_not_hold": int((converged & ~holds).sum()),
        "not_hold_at_validation_1": int((converged & ~holds & perfect).sum()),
        "hold_at_validation_1": int((holds & perfect).sum()),
    }
