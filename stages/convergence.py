"""Summarise a seed sweep: per configuration, how many seeds converge, and in which epoch.

    dvc exp show --json | python -m stages.convergence      (or: python -m stages.convergence exps.json)

    | configuration | seeds | converged | epoch each seed first reached 0.99 (seed: epoch) |
    | train.learning_rate=0.001 | 3 | 2/3 | 0: -, 1: 6, 2: 3 |

A run converges when its held-out final-step accuracy (metrics/evaluate.json) is at least 0.99; its epoch is
the first whose held-out final-step accuracy reached 0.99 during training (`converged_epoch`, metrics/train).
A configuration is every param but `train.seed`; the table names the params that differ between them.
"""

import json
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from stages.common import CONVERGED

SEED = "train.seed"


def runs(exp_show: list[dict]) -> Iterator[dict]:
    """The `data` of every commit and experiment in `dvc exp show --json` output."""
    for commit in exp_show:
        yield commit["data"]
        for experiment in commit.get("experiments") or []:
            for rev in experiment["revs"]:
                yield rev["data"]


def flatten(params: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def summarise(exp_show: list[dict]) -> list[dict]:
    """One row per configuration: its seeds, which converged, and each seed's converged epoch."""
    seen, by_config = set(), defaultdict(dict)
    for data in runs(exp_show):
        params = (data.get("params") or {}).get("params.yaml", {}).get("data")
        metrics = data.get("metrics") or {}
        evaluation = metrics.get("metrics/evaluate.json", {}).get("data")
        if not params or not evaluation:  # queued, running or failed
            continue
        flat = flatten(params)
        config = json.dumps({key: value for key, value in flat.items() if key != SEED}, sort_keys=True)
        if (config, flat[SEED]) in seen:  # the workspace repeats its base commit
            continue
        seen.add((config, flat[SEED]))
        training = metrics.get("metrics/train/metrics.json", {}).get("data", {})
        by_config[config][flat[SEED]] = {
            "converged": evaluation["final_step_accuracy"] >= CONVERGED,
            "epoch": training.get("converged_epoch"),
        }
    configs = [json.loads(config) for config in by_config]
    keys = {key for config in configs for key in config}
    varying = sorted(key for key in keys if len({json.dumps(config.get(key)) for config in configs}) > 1)
    return [
        {
            "configuration": ", ".join(f"{key}={config.get(key)}" for key in varying) or "all runs",
            "seeds": dict(sorted(seeds.items())),
        }
        for config, seeds in zip(configs, by_config.values(), strict=True)
    ]


def table(rows: list[dict]) -> str:
    lines = [
        f"| configuration | seeds | converged | epoch each seed first reached {CONVERGED} (seed: epoch) |",
        "| --- | --- | --- | --- |",
    ]
    for row in rows:
        seeds = row["seeds"]
        converged = sum(seed["converged"] for seed in seeds.values())
        epochs = ", ".join(f"{seed}: {result['epoch'] or '-'}" for seed, result in seeds.items())
        lines.append(f"| {row['configuration']} | {len(seeds)} | {converged}/{len(seeds)} | {epochs} |")
    return "\n".join(lines)


def main(arguments: list[str]) -> None:
    text = Path(arguments[0]).read_text() if arguments else sys.stdin.read()
    print(table(summarise(json.loads(text))))


if __name__ == "__main__":
    main(sys.argv[1:])
