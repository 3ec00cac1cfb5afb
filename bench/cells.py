"""Part `cells`: can a one-unit LSTM, GRU or simple RNN learn parity, how often, and how far does it hold?

    python -m bench --parts cells

Rates, not draws. For each cell (`train.cell`), trained in this process as `train` trains, the fused engine:
- labels (`targets.mode`: running, final) x lengths (fixed 50; `data.min_len: 1`, lengths 1-50): one population of
  RATE_MEMBERS members, seeds RATE_SEEDS, the defaults otherwise (10 epochs of 100,000 sequences, batch 128, learning
  rate 0.001). A member converged when its validation final-step accuracy ended at 0.99 or more.
- how far the converged members hold: final-step accuracy on fresh sequences (a stream no stage draws) of each of
  HELD_LENGTHS, per member; the median, the worst and the share at 0.999 or more.
- Delétang et al.'s protocol for parity: the final label only, lengths 1-40 for training, scored on lengths 41-500 as
  the paper scores (the mean over lengths of the final-step accuracy; DELETANG_SEQUENCES a length). Its best of 10
  seeds x 3 learning rates, on tuning seeds DELETANG_TUNING_SEEDS; then, at the learning rate that did best on them
  (its mean score), the rate over DELETANG_MEMBERS fresh seeds, DELETANG_RATE_SEEDS, never tuned on: a member holds
  when it scores 0.99 or more. Each at two budgets, BUDGETS epochs (782 steps of batch 128 an epoch).
Seeds never used by another part; tuning and confirmation seeds apart.
"""

import time
from pathlib import Path

import numpy as np

from bench.harness import default_data
from parity_lstm.data.encoding import random_bits, running_parity
from parity_lstm.engines import engine
from parity_lstm.model import CELLS, Layout, initial_members
from parity_lstm.numerics.forward import predicted_odd, probability_of_one
from parity_lstm.params import TrainParams
from stages.convergence import wilson
from stages.train import CONVERGED, Validation

RATE_MEMBERS, RATE_SEEDS = 100, 2000  # seeds 2000-2099
LABELS_AND_LENGTHS = {
    "running labels, length 50": ("running", None),
    "running labels, lengths 1-50": ("running", 1),
    "final label, length 50": ("final", None),
    "final label, lengths 1-50": ("final", 1),
}
HELD_LENGTHS = {500: 1000, 10_000: 1000, 100_000: 100}  # length: fresh sequences scored at it
HOLDS = 0.999
FRESH_STREAM = 4_242_424  # a seed no stage draws from
DELETANG_LEARNING_RATES = (0.001, 0.003, 0.01)
DELETANG_TUNING_SEEDS, DELETANG_RATE_SEEDS, DELETANG_MEMBERS = 3000, 3100, 100  # 3000-3009; 3100-3199
DELETANG_TRAIN_LENGTH, DELETANG_TEST_LENGTHS, DELETANG_SEQUENCES = 40, range(41, 501), 100
DELETANG_SOLVED = 0.99
BUDGETS = (10, 30)  # epochs
# The paper's figures for parity check, best of 10 seeds x 3 learning rates after 1,000,000 steps of batch 128.
PAPER = {"steps": 1_000_000, "batch": 128, "lstm": 100.0, "simple_rnn": 100.0, "gru": None}


def fit(arrays: tuple, params: TrainParams, budgets: tuple[int, ...]) -> dict[int, np.ndarray]:
    """Train a population with the fused engine as `train` does; its members after each epoch of `budgets`."""
    layout = Layout(params.units, params.cell)
    initial = initial_members(params.seed, params.population, layout, params.forget_bias)
    snapshots, epoch = {}, 0

    def end_of_epoch(loss: float, members: np.ndarray) -> bool:
        nonlocal epoch
        epoch += 1
        if epoch in budgets:
            snapshots[epoch] = members.copy()
        return False

    engine("fused")(
        initial, arrays[:3], params.model_copy(update={"epochs": max(budgets)}), end_of_epoch, lambda: False
    )
    return snapshots


def accuracy_at(members: np.ndarray, layout: Layout, length: int, sequences: int) -> np.ndarray:
    """Each member's final-step accuracy on fresh sequences of `length`, scored in chunks of bounded size."""
    rng = np.random.default_rng([FRESH_STREAM, length])
    right, chunk = np.zeros(len(members)), max(1, 20_000_000 // (length * len(members)))
    for start in range(0, sequences, chunk):
        bits = random_bits(rng, min(chunk, sequences - start), length)
        probability = probability_of_one(members, bits, layout, final_only=True)[0]  # (rows, members)
        right += (predicted_odd(probability) == (running_parity(bits)[:, -1:] == 1)).sum(axis=0)
    return right / sequences


def held(members: np.ndarray, layout: Layout) -> dict:
    """How far converged members hold: at each held length, the median and worst accuracy and the share >= HOLDS."""
    if not len(members):
        return {}
    result = {}
    for length, sequences in HELD_LENGTHS.items():
        accuracy = accuracy_at(members, layout, length, sequences)
        result[str(length)] = {
            "median": float(np.median(accuracy)),
            "worst": float(accuracy.min()),
            "holds": int((accuracy >= HOLDS).sum()),
            "sequences": sequences,
        }
    return result


def rates(cell: str) -> dict:
    """Per labels and lengths: the members that converged on validation, and how far those hold."""
    result = {}
    for label, (mode, min_len) in LABELS_AND_LENGTHS.items():
        started = time.perf_counter()
        params, arrays = default_data({"min_len": min_len}, mode)
        run = TrainParams(**params["train"] | {"cell": cell, "population": RATE_MEMBERS, "seed": RATE_SEEDS})
        layout = Layout(run.units, cell)
        (members,) = fit(arrays, run, (run.epochs,)).values()
        accuracy = Validation(*arrays[3:], layout).accuracy(members)
        converged = accuracy >= CONVERGED
        result[label] = {
            "set": {"train.cell": cell, "targets.mode": mode, "data.min_len": min_len},
            "seeds": [RATE_SEEDS, RATE_SEEDS + RATE_MEMBERS - 1],
            "converged": int(converged.sum()),
            "members": RATE_MEMBERS,
            "validation": accuracy.tolist(),
            "held": held(members[converged], layout),
            "seconds": time.perf_counter() - started,
        }
        print(f"{cell}, {label}: {int(converged.sum())}/{RATE_MEMBERS} converged", flush=True)
    return result


def deletang_scores(members: np.ndarray, layout: Layout) -> np.ndarray:
    """Each member's score as the paper scores: its mean over lengths 41-500 of the final-step accuracy."""
    return np.mean([accuracy_at(members, layout, length, DELETANG_SEQUENCES) for length in DELETANG_TEST_LENGTHS], 0)


def scored(snapshots: dict[int, np.ndarray], layout: Layout) -> dict[str, list[float]]:
    """Each budget's members' scores."""
    return {str(budget): deletang_scores(members, layout).tolist() for budget, members in snapshots.items()}


def deletang(cell: str) -> dict:
    """The paper's best-of on tuning seeds, then the rate at the learning rate chosen there, on fresh seeds."""
    started = time.perf_counter()
    params, arrays = default_data({"seq_len": DELETANG_TRAIN_LENGTH, "min_len": 1}, "final")
    layout = Layout(params["train"]["units"], cell)
    tuning = {}
    for rate in DELETANG_LEARNING_RATES:
        run = TrainParams(**params["train"] | {"cell": cell, "population": 10, "seed": DELETANG_TUNING_SEEDS})
        snapshots = fit(arrays, run.model_copy(update={"learning_rate": rate}), BUDGETS)
        tuning[str(rate)] = scored(snapshots, layout)
    longest = str(max(BUDGETS))
    chosen = max(DELETANG_LEARNING_RATES, key=lambda rate: np.mean(tuning[str(rate)][longest]))
    run = TrainParams(
        **params["train"]
        | {"cell": cell, "population": DELETANG_MEMBERS, "seed": DELETANG_RATE_SEEDS, "learning_rate": chosen}
    )
    confirmed = scored(fit(arrays, run, BUDGETS), layout)
    print(f"{cell}, Delétang protocol: learning rate {chosen}", flush=True)
    return {
        "tuning": tuning,
        "learning_rate": chosen,
        "confirmation": confirmed,
        "seconds": time.perf_counter() - started,
    }


def measure(scratch: Path) -> dict:
    """Every cell's rates and its Delétang protocol. `scratch` is not used."""
    results = {cell: {"rates": rates(cell), "deletang": deletang(cell)} for cell in CELLS}
    return {"cells": results, "table": table(results), "deletang_table": deletang_table(results)}


def interval(successes: int, trials: int) -> str:
    low, high = wilson(successes, trials)
    return f"{successes}/{trials} ({low:.2f}-{high:.2f})"


def seeds_until_one(successes: int, trials: int) -> str:
    """The expected number of seeds until one converges, 1/p, over the Wilson interval's ends."""
    low, high = wilson(successes, trials)
    if not successes:
        return f"more than {1 / high:.0f}"
    return f"{trials / successes:.1f} ({1 / high:.1f}-{1 / low:.1f})"


def table(results: dict) -> str:
    lengths = "/".join(f"{int(length):,}" for length in HELD_LENGTHS)
    longest = f"{max(HELD_LENGTHS):,}"
    lines = [
        f"| cell | labels, lengths | converged | seeds until one | best of 2/4/8/16 | converged members holding at "
        f"{lengths} | median/worst at {longest} |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for cell, result in results.items():
        for label, rate in result["rates"].items():
            p = rate["converged"] / rate["members"]
            best_of = "/".join(f"{1 - (1 - p) ** k:.2f}" for k in (2, 4, 8, 16))
            holds, far = "-", "-"
            if rate["converged"]:
                holds = "/".join(str(rate["held"][str(length)]["holds"]) for length in HELD_LENGTHS)
                at_longest = rate["held"][str(max(HELD_LENGTHS))]
                far = f"{at_longest['median']:.3f}/{at_longest['worst']:.3f}"
            lines.append(
                f"| {cell} | {label} | {interval(rate['converged'], rate['members'])} "
                f"| {seeds_until_one(rate['converged'], rate['members'])} | {best_of} | {holds} | {far} |"
            )
    return "\n".join(lines)


def deletang_table(results: dict) -> str:
    lines = [
        "| cell | paper: best of 10 seeds x 3 rates | ours: best of 10 seeds x 3 rates | chosen rate | "
        + " | ".join(f"solved, {budget} epochs" for budget in BUDGETS)
        + " |",
        "| --- | --- | --- | --- |" + " --- |" * len(BUDGETS),
    ]
    for cell, result in results.items():
        trial = result["deletang"]
        best = max(max(scores[str(max(BUDGETS))]) for scores in trial["tuning"].values())
        paper = PAPER.get(cell)
        solved = [sum(score >= DELETANG_SOLVED for score in trial["confirmation"][str(budget)]) for budget in BUDGETS]
        lines.append(
            f"| {cell} | {paper if paper is not None else 'not in the paper'} | {100 * best:.1f} "
            f"| {trial['learning_rate']} | " + " | ".join(interval(n, DELETANG_MEMBERS) for n in solved) + " |"
        )
    return "\n".join(lines)
