"""Part `variants`: the defaults, seed 2 and the label and length variants (`targets.mode`, `data.min_len`), one
`dvc exp run` each: held-out figures and length generalization.

    python -m bench --parts variants
"""

import itertools
from pathlib import Path

import yaml

from bench.harness import default_run_repo, read_json
from bench.scratch_repo import dvc

# One seed each (single draws, not rates): the label and length variants from the defaults, and a second seed.
VARIANTS = {
    "defaults": {},
    "seed 2": {"train.seed": 2},
    "running labels, lengths 1-50": {"data.min_len": 1},
    "final labels, fixed length": {"targets.mode": "final"},
    "final labels, lengths 1-50": {"targets.mode": "final", "data.min_len": 1},
}


def measure(scratch: Path) -> dict:
    """Each of VARIANTS as one `dvc exp run` from a repo whose default run is done; every varied key is set in every
    run, since an experiment leaves its params in the workspace."""
    repo = default_run_repo(scratch / "variants")
    defaults = yaml.safe_load((repo / "params.yaml").read_text())
    varied = {key for changes in VARIANTS.values() for key in changes}
    runs = {}
    for label, changes in VARIANTS.items():
        values = {key: changes.get(key, defaults[key.split(".")[0]][key.split(".")[1]]) for key in sorted(varied)}
        settings = [f"{key}={'null' if value is None else value}" for key, value in values.items()]
        dvc(repo, "exp", "run", *itertools.chain.from_iterable(("-S", setting) for setting in settings))
        runs[label] = {
            "set": settings,
            "evaluate": read_json(repo / "metrics/evaluate.json"),
            "train": read_json(repo / "metrics/train/metrics.json"),
        }
        print(f"{label}: done", flush=True)
    lines = [
        "| variant | `dvc exp run` with | final-step accuracy | sequence accuracy | mean final confidence "
        "| final-step accuracy at the longest length | validation final-step accuracy |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, figures in runs.items():
        held_out, by_length = figures["evaluate"], figures["evaluate"]["by_length"]
        longest = by_length[max(by_length, key=int)]["final_step_accuracy"]
        lines.append(
            f"| {label} | `{' '.join('-S ' + setting for setting in figures['set'])}` "
            f"| {held_out['final_step_accuracy']:.4f} | {held_out['sequence_accuracy']:.4f} "
            f"| {held_out['mean_final_confidence']:.4f} | {longest:.4f} "
            f"| {figures['train']['val']['selected_final_step_accuracy']:.4f} |"
        )
    return {"runs": runs, "table": "\n".join(lines)}
