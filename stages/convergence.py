"""Summarise a seed sweep: per configuration, how many seeds converge, with a 95 % Wilson interval.

    dvc exp show --json | python -m stages.convergence      (or: python -m stages.convergence exps.json)
    python -m stages.convergence exps.json exp-a exp-b      (these experiments only: a sweep's)

    | configuration | runs | members converged | 95 % interval | median epoch | members not converged | ...
    | train.population=20 | 1 | 16/20 | 0.58-0.92 | 5.0 | 0, 5, 18, 19 | ...

Every member of a run counts as a seed: member k of a run with `train.seed: s` is seed s + k (with
`train.population: 1`, the run's own seed), so one population run gives a rate. A member converged when its
validation final-step accuracy ended at 0.99 or more (metrics/train, `member_converged_epochs`: one epoch a
member, "-" for none); its epoch is the first from which it stayed there. Per run, the model `train` selected
counts as converged the same way, and as holding when it reached 0.999 final-step accuracy on the test sequences
of the longest `evaluate.lengths` (metrics/evaluate.json). A configuration is every param but `train.seed`; the
table names the params that differ between configurations.
"""

import json
import math
import statistics
import sys
from collections import defaultdict
from collections.abc import Collection, Iterator
from pathlib import Path

SEED = "train.seed"
# Test final-step accuracy at the longest length from which a run's model counts as holding there.
HOLDS = 0.999
# Seeds listed by name in the table; more are counted only.
LISTED = 20


def runs(exp_show: list[dict], names: Collection[str] = ()) -> Iterator[dict]:
    """The `data` of every commit and experiment in `dvc exp show --json` output; only experiments `names` if given."""
    for commit in exp_show:
        if not names:
            yield commit["data"]
        for experiment in commit.get("experiments") or []:
            for rev in experiment["revs"]:
                if not names or rev.get("name") in names:
                    yield rev["data"]


def flatten(params: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def wilson(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95 % Wilson score interval of a rate successes/trials."""
    if trials == 0:
        return 0.0, 1.0
    rate = successes / trials
    centre = (rate + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def summarise(exp_show: list[dict], names: Collection[str] = ()) -> list[dict]:
    """One row per configuration: each member seed's converged epoch (None: did not converge), and per run seed
    whether the selected model converged and whether it holds at the longest test length."""
    by_config = defaultdict(lambda: {"members": {}, "runs": {}})
    for data in runs(exp_show, names):
        params = (data.get("params") or {}).get("params.yaml", {}).get("data")
        metrics = data.get("metrics") or {}
        training = metrics.get("metrics/train/metrics.json", {}).get("data")
        evaluation = metrics.get("metrics/evaluate.json", {}).get("data")
        if not params or not evaluation or "member_converged_epochs" not in (training or {}):
            continue  # queued, running, failed, or from a version without populations
        flat = flatten(params)
        seed = flat[SEED]
        config = json.dumps({key: value for key, value in flat.items() if key != SEED}, sort_keys=True)
        row = by_config[config]
        if seed in row["runs"]:  # the workspace repeats its base commit
            continue
        epochs = [None if epoch == "-" else int(epoch) for epoch in training["member_converged_epochs"].split()]
        row["members"] |= {seed + k: epoch for k, epoch in enumerate(epochs)}
        longest = max(evaluation["by_length"], key=int)
        row["runs"][seed] = {
            "converged": epochs[training["selected_member"]] is not None,
            "holds": evaluation["by_length"][longest]["final_step_accuracy"] >= HOLDS,
            "longest": int(longest),
        }
    configs = [json.loads(config) for config in by_config]
    keys = {key for config in configs for key in config}
    varying = sorted(key for key in keys if len({json.dumps(config.get(key)) for config in configs}) > 1)
    return [
        {
            "configuration": ", ".join(f"{key}={config.get(key)}" for key in varying) or "all runs",
            "members": dict(sorted(row["members"].items())),
            "runs": dict(sorted(row["runs"].items())),
        }
        for config, row in zip(configs, by_config.values(), strict=True)
    ]


def rate(successes: int, trials: int) -> str:
    low, high = wilson(successes, trials)
    return f"{successes}/{trials} | {low:.2f}-{high:.2f}"


def listed(seeds: list[int]) -> str:
    shown = ", ".join(map(str, seeds[:LISTED]))
    return (shown + f" and {len(seeds) - LISTED} more" if len(seeds) > LISTED else shown) or "-"


def table(rows: list[dict]) -> str:
    lines = [
        "| configuration | runs | members converged | 95 % interval | median epoch | members not converged "
        f"| selected model converged | 95 % interval | selected model >= {HOLDS} at the longest test length "
        "| 95 % interval | longest test length |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        members, run_results = row["members"], row["runs"].values()
        epochs = [epoch for epoch in members.values() if epoch is not None]
        failed = [seed for seed, epoch in members.items() if epoch is None]
        lengths = ", ".join(str(length) for length in sorted({run["longest"] for run in run_results}))
        lines.append(
            f"| {row['configuration']} | {len(run_results)} | {rate(len(epochs), len(members))} "
            f"| {statistics.median(epochs) if epochs else '-'} | {listed(failed)} "
            f"| {rate(sum(run['converged'] for run in run_results), len(run_results))} "
            f"| {rate(sum(run['holds'] for run in run_results), len(run_results))} | {lengths} |"
        )
    return "\n".join(lines)


def main(arguments: list[str]) -> None:
    text = Path(arguments[0]).read_text() if arguments else sys.stdin.read()
    print(table(summarise(json.loads(text), names=arguments[1:])))


if __name__ == "__main__":
    main(sys.argv[1:])
