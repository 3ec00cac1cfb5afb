"""Part `streaming`: `train` at the default size streamed from the files against the in-memory `train` of commit
IN_MEMORY_REV, alternated on the same data: wall time and peak memory of each process.

    python -m bench --parts streaming [--repeats 3]
"""

import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

from bench.harness import measured, read_json, training_environment
from bench.scratch_repo import REPO, dvc, make_scratch_repo, run

# The last commit whose `train` held the whole training set in memory.
IN_MEMORY_REV = "2e8db1f"


def in_memory_repo(streamed: Path, path: Path) -> Path:
    """A copy of the data of `streamed` at `path`, with IN_MEMORY_REV's stages and params."""
    shutil.copytree(streamed, path, ignore=shutil.ignore_patterns("stages", "parity_lstm", ".git", ".dvc"))
    (path / "data/train_loss_factors.npy").rename(path / "data/train_weights.npy")  # its name at IN_MEMORY_REV
    archive = subprocess.run(["git", "archive", IN_MEMORY_REV, "stages"], cwd=REPO, capture_output=True, check=True)
    subprocess.run(["tar", "-x"], input=archive.stdout, cwd=path, check=True)
    # IN_MEMORY_REV's strict params refuse the keys added since (`data.val_count`, `train.population`): give it
    # today's values of the keys it knows.
    known = yaml.safe_load(run(REPO, "git", "show", f"{IN_MEMORY_REV}:params.yaml", stderr=False))
    today = yaml.safe_load((streamed / "params.yaml").read_text())
    params = {section: {key: today[section][key] for key in keys} for section, keys in known.items()}
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def measure(scratch: Path, repeats: int) -> dict:
    """`train` at the default size streamed from the files, and with the data in memory as at IN_MEMORY_REV,
    alternated on the same data so that the machine's drifting speed hits both alike. Both run with today's XLA
    options (IN_MEMORY_REV predates them). Each scores 10,000 held-out sequences an epoch: today's `train` the
    validation set, IN_MEMORY_REV's the test set (before the validation split)."""
    streamed = make_scratch_repo(scratch / "streamed")
    dvc(streamed, "repro", "targets")
    in_memory = in_memory_repo(streamed, scratch / "in_memory")
    repos = {"in_memory": in_memory, "streamed": streamed}
    runs = {name: [] for name in repos}
    with training_environment():  # both sides' processes inherit it, today's XLA options included
        for repeat in range(repeats):
            for name, repo in repos.items():
                runs[name].append(measured(repo, sys.executable, "-m", "stages.train"))
            print(f"train repeat {repeat + 1}/{repeats}: in memory, then streamed", flush=True)
    # Same data, seed and batch size; only the order of the batches differs (IN_MEMORY_REV used Dataset.shuffle).
    trained = {name: read_json(repo / "metrics/train/metrics.json") for name, repo in repos.items()}
    medians = {
        name: {key: statistics.median(one[key] for one in measured_runs) for key in measured_runs[0]}
        for name, measured_runs in runs.items()
    }
    labels = {"in_memory": f"whole set in memory (commit {IN_MEMORY_REV})", "streamed": "streamed from the files"}
    lines = ["| `train`, default params | median wall | each run | peak resident |", "| --- | --- | --- | --- |"]
    for name, label in labels.items():
        each = ", ".join(f"{one['wall_s']:.1f}" for one in runs[name])
        lines.append(
            f"| {label} | {medians[name]['wall_s']:.2f} s | {each} s | {medians[name]['peak_rss_mib']:.0f} MiB |"
        )
    ratio = medians["streamed"]["wall_s"] / medians["in_memory"]["wall_s"]
    losses = ", ".join(f"{labels[name].split(' (')[0]} {trained[name]['train']['loss']:.4f}" for name in labels)
    lines += ["", f"Streamed / in memory: {ratio:.2f}. Final training loss: {losses}."]
    return {"runs": runs, "median": medians, "trained": trained, "table": "\n".join(lines)}
