"""Summarise a sweep: `dvc exp show --json` of its experiments in, one table row per configuration out.

    dvc exp show --json | python -m tools.summarise             (or: python -m tools.summarise exps.json)
    python -m tools.summarise exps.json exp-a exp-b              (these experiments only: a sweep's)
    ... | python -m tools.summarise --where train.seed=3100      (the experiments with these params)
    ... | python -m tools.summarise --choose train.learning_rate   (and the best value of that param)

It reads the finished experiments, not the commits they branch from: queued, running and failed ones are left out.

Every member of a run counts as a seed: member k of a run with `train.seed: s` is seed s + k, so one population run
gives a rate. A configuration is every param but `train.seed`; the table names the params that differ. Per
configuration, columns appear where the sweep measured them:

- members converged (validation final-step accuracy ended >= 0.99), with the 95 % Wilson interval; seeds until one
  (1/rate, over the interval's ends); best of K, the chance that one of K seeds converges (no interval: a point
  estimate at the measured rate);
- members holding (final-step accuracy >= 0.999 on fresh sequences) at each length of `evaluate.lengths`, counts
  (no interval); the median and worst of the converged members at the longest;
- per range `low-high` of `evaluate.lengths`, Delétang et al.'s score (the mean over its lengths of the final-step
  accuracy): the best member (no interval), and the members solving it (score >= 0.99), with the 95 % interval;
- where a configuration has several population runs: the model `train` selected, converged and holding at its run's
  longest length, per run, with the 95 % interval.

`--choose KEY`: the configurations that differ only in KEY, as one tuning grid: the best score over seeds x values of
each range (no interval), and the value whose members scored best on average, the one to confirm on fresh seeds.
"""

import argparse
import json
import statistics
import sys
from collections import defaultdict
from collections.abc import Collection, Iterator
from pathlib import Path

import yaml

from parity_lstm.rates import HOLDS, SOLVED, best_of, interval, seeds_until_one

SEED = "train.seed"
BEST_OF = (2, 4, 8, 16)


def runs(exp_show: list[dict], names: Collection[str] = ()) -> Iterator[dict]:
    """The `data` of every finished experiment in `dvc exp show --json` output; only experiments `names` if given. A
    queued, running or failed one shows its baseline's metrics, not its own: left out."""
    for commit in exp_show:
        for experiment in commit.get("experiments") or []:
            if (experiment.get("executor") or {}).get("state") not in (None, "success"):
                continue
            for rev in experiment["revs"]:
                if rev.get("data") and not rev.get("error") and (not names or rev.get("name") in names):
                    yield rev["data"]


def flatten(params: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def member_scores(evaluation: dict, population: int) -> dict[str, list[float]]:
    """Each member's final-step accuracy at each length, and its score over each range, from metrics/evaluate.json:
    a population's `members`, or a run of one's own model."""
    if population > 1:
        return {
            key: [float(value) for value in (scored.get("final_step_accuracy") or scored["score"]).split()]
            for key, scored in evaluation["members"].items()
        }
    at_lengths = {key: [scored["final_step_accuracy"]] for key, scored in evaluation.get("by_length", {}).items()}
    return at_lengths | {key: [scored["score"]] for key, scored in evaluation.get("by_range", {}).items()}


def summarise(exp_show: list[dict], names: Collection[str] = (), where: dict | None = None) -> list[dict]:
    """One row per configuration: the params that differ between configurations; per member seed, its converged epoch
    (None: did not converge) and its figure at each length and range; per run seed, whether the selected model
    converged and holds at its longest length. Only runs whose params include `where`, if given."""
    by_config = defaultdict(lambda: {"members": {}, "runs": {}})
    for data in runs(exp_show, names):
        params = (data.get("params") or {}).get("params.yaml", {}).get("data")
        metrics = data.get("metrics") or {}
        training = (metrics.get("metrics/train/metrics.json") or {}).get("data") or {}
        evaluation = (metrics.get("metrics/evaluate.json") or {}).get("data")
        if not params or not evaluation or "member_converged_epochs" not in training:
            continue  # queued, running or failed
        flat = flatten(params)
        if any(flat.get(key) != value for key, value in (where or {}).items()):
            continue
        seed = flat[SEED]
        config = json.dumps({key: value for key, value in flat.items() if key != SEED}, sort_keys=True)
        row = by_config[config]
        epochs = [None if epoch == "-" else int(epoch) for epoch in training["member_converged_epochs"].split()]
        if len(epochs) > 1 and "members" not in evaluation:
            continue  # scored by a version that kept only the selected member
        scores = member_scores(evaluation, len(epochs))
        for k, epoch in enumerate(epochs):
            # Runs whose members overlap (seeds 3 and 4 with two members each) start a seed's weights twice: its
            # first run counts, so that a rate counts each seed once.
            scored = {"epoch": epoch, "scores": {key: values[k] for key, values in scores.items()}}
            row["members"].setdefault(seed + k, scored)
        if len(epochs) > 1 and evaluation.get("by_length"):  # `dvc exp show` drops an empty `by_length`
            longest = max(evaluation["by_length"], key=int)
            row["runs"][seed] = {
                "converged": epochs[training["selected_member"]] is not None,
                "holds": evaluation["by_length"][longest]["final_step_accuracy"] >= HOLDS,
            }
    configs = [json.loads(config) for config in by_config]
    keys = {key for config in configs for key in config}
    varying = sorted(key for key in keys if len({json.dumps(config.get(key)) for config in configs}) > 1)
    rows = [
        {
            "configuration": {key: config.get(key) for key in varying},
            "members": dict(sorted(row["members"].items())),
            "runs": dict(sorted(row["runs"].items())),
        }
        for config, row in zip(configs, by_config.values(), strict=True)
    ]
    return sorted(rows, key=lambda row: json.dumps(list(row["configuration"].values())))


def override(key: str, value) -> str:
    """A param as `dvc exp run -S` takes it: `data.min_len=null`, `train.cell=gru`, `evaluate.lengths=[50,100]`."""
    return f"{key}={value if isinstance(value, str) else json.dumps(value, separators=(',', ':'))}"


def label(configuration: dict) -> str:
    return ", ".join(override(key, value) for key, value in configuration.items()) or "all runs"


def measured(rows: list[dict]) -> tuple[list[int], list[str]]:
    """The lengths and the ranges that members of the sweep were scored at, in order."""
    keys = {key for row in rows for member in row["members"].values() for key in member["scores"]}
    ranges = sorted((key for key in keys if not key.isdigit()), key=lambda key: int(key.split("-")[0]))
    return sorted(int(key) for key in keys if key.isdigit()), ranges


def holding(members: list[dict], length: str) -> str:
    """How many members hold at `length`; "-" where they were not scored there."""
    if any(length not in member["scores"] for member in members):
        return "-"
    return str(sum(member["scores"][length] >= HOLDS for member in members))


def table(rows: list[dict]) -> str:
    """The configurations' rates: each with its 95 % interval in brackets, and what has none named in its header."""
    lengths, ranges = measured(rows)
    # The selected model's rate, where a configuration has several population runs: a run's model is one of its members.
    populations = any(len(row["runs"]) > 1 for row in rows)
    header = ["configuration", "converged", "seeds until one", f"best of {'/'.join(map(str, BEST_OF))}, no interval"]
    if lengths:
        header.append(f"holding at {' / '.join(f'{length:,}' for length in lengths)}, no interval")
        header.append(f"median/worst at {lengths[-1]:,} of those converged, no interval")
    for lengths_range in ranges:
        header += [f"best score over {lengths_range}, no interval", f"solved {lengths_range} (score >= {SOLVED})"]
    if populations:
        header += ["selected model converged", "selected model holding at its longest length"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        members = list(row["members"].values())
        converged = [member for member in members if member["epoch"] is not None]
        n, c = len(members), len(converged)
        cells = [label(row["configuration"]), interval(c, n), seeds_until_one(c, n)]
        cells.append("/".join(f"{best_of(c, n, draws):.2f}" for draws in BEST_OF))
        if lengths:
            cells.append(" / ".join(holding(members, str(length)) for length in lengths))
            longest = [member["scores"].get(str(lengths[-1])) for member in converged]
            known = [accuracy for accuracy in longest if accuracy is not None]
            cells.append(f"{statistics.median(known):.3f}/{min(known):.3f}" if known else "-")
        for lengths_range in ranges:
            scores = [member["scores"].get(lengths_range) for member in members]
            if None in scores:
                cells += ["-", "-"]
                continue
            cells += [f"{100 * max(scores):.1f}", interval(sum(score >= SOLVED for score in scores), n)]
        if populations:
            selected = list(row["runs"].values())
            for what in ("converged", "holds"):
                cells.append(interval(sum(run[what] for run in selected), len(selected)) if selected else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chosen(rows: list[dict], key: str) -> list[dict]:
    """Per group of configurations that differ only in `key`, per range: the best score over its seeds and values, and
    the value whose members scored best on average (ties: the first)."""
    _, ranges = measured(rows)
    groups = defaultdict(list)
    for row in rows:
        rest = {name: value for name, value in row["configuration"].items() if name != key}
        groups[json.dumps(rest)].append(row)
    choices = []
    for rest, group in groups.items():
        for lengths_range in ranges:
            scores = {
                row["configuration"][key]: [m["scores"][lengths_range] for m in row["members"].values()]
                for row in group
                if all(lengths_range in m["scores"] for m in row["members"].values())
            }
            if not scores:
                continue
            choices.append(
                {
                    "configuration": json.loads(rest),
                    "range": lengths_range,
                    "values": list(scores),
                    "seeds": sorted({seed for row in group for seed in row["members"]}),
                    "best": max(max(values) for values in scores.values()),
                    "chosen": max(scores, key=lambda value: statistics.mean(scores[value])),
                }
            )
    return choices


def choice_table(choices: list[dict], key: str) -> str:
    lines = [
        f"| configuration | best score over seeds x {key}, no interval | chosen {key} (best mean score) |",
        "| --- | --- | --- |",
    ]
    for choice in choices:
        where = f"{label(choice['configuration'])}, {choice['range']}"
        lines.append(f"| {where} | {100 * choice['best']:.1f} | {choice['chosen']} |")
    return "\n".join(lines)


def agreement(rows: list[dict]) -> str:
    """For two configurations over the same seeds (two engines, say): on how many seeds they agree about converging."""
    seeds = [set(row["members"]) for row in rows]
    if len(rows) != 2 or seeds[0] != seeds[1]:
        return ""
    alike = sum(len({row["members"][seed]["epoch"] is None for row in rows}) == 1 for seed in seeds[0])
    return f"The configurations agree on which members converge for {alike} of {len(seeds[0])} seeds."


def main(arguments: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.summarise", description=__doc__.split("\n\n")[0])
    parser.add_argument("exps", nargs="?", type=Path, help="`dvc exp show --json` output (default: standard input)")
    parser.add_argument("names", nargs="*", help="only these experiments")
    parser.add_argument("--choose", metavar="KEY", help="the param tuned over: its best value per range")
    parser.add_argument("--where", metavar="KEY=VALUE", nargs="+", default=[], help="only runs with these params")
    args = parser.parse_args(arguments)
    text = args.exps.read_text() if args.exps else sys.stdin.read()
    try:
        exp_show = json.loads(text)
    except json.JSONDecodeError as error:
        raise SystemExit(f"not the output of `dvc exp show --json`: {error}") from None
    where = {}
    for item in args.where:
        key, _, value = item.partition("=")
        where[key] = yaml.safe_load(value)  # as params.yaml reads it: 3100, 0.01, null, gru
    rows = summarise(exp_show, names=args.names, where=where)
    if not rows:
        raise SystemExit("no finished experiment with train and evaluate metrics in the input")
    if args.choose and not any(args.choose in row["configuration"] for row in rows):
        raise SystemExit(f"--choose {args.choose}: not a param that differs between the configurations")
    print(table(rows))
    if note := agreement(rows):
        print(f"\n{note}")
    if args.choose:
        print("\n" + choice_table(chosen(rows, args.choose), args.choose))


if __name__ == "__main__":
    main(sys.argv[1:])
