"""The studies of docs/results.md, each a part: one or more grids queued with `dvc exp run --queue` in DVC's own syntax,
run by `dvc queue start -j JOBS`, summarised by `python -m tools.summarise`. The part runs the very commands the page
prints, in a scratch repo whose default run is done, and stores the summary's rows and each grid's wall time.

    python -m bench --parts cells [--jobs 2 [1 ...]]

With JOBS queue workers on a machine of C cores, each worker's kernels run on C / JOBS threads (NUMBA_NUM_THREADS),
so the cores are not oversubscribed. The tables come from the run with the first JOBS; each further one runs the study
again in a repo of its own, for its wall time and to check that its tables are the same.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness import default_run_repo
from devkit.scratch_repo import dvc, pipeline_environment
from devkit.settings import environment
from tools.summarise import agreement, choice_table, chosen, override, summarise, table

# Delétang et al.'s protocol for parity: the final label only, lengths 1-40 for training, scored on lengths 41-500 as
# the mean over lengths of the final-step accuracy (100 fresh sequences a length).
DELETANG = (
    "-S data.seq_len=40 -S data.min_len=1 -S targets.mode=final -S 'evaluate.lengths=[41-500]' "
    "-S evaluate.sequences_per_length=100"
)
CELLS = "-S 'train.cell=lstm,gru,simple_rnn'"
RATES = "-S 'train.learning_rate=0.001,0.003,0.01'"


@dataclass(frozen=True)
class Study:
    grids: tuple[str, ...]  # the `-S` arguments of each `dvc exp run --queue`, in DVC's own syntax
    choose: str | None = None  # the param the grids tune over (`python -m tools.summarise --choose`)
    # Then, per choice the summary made: one more grid on fresh seeds at the chosen value, `{key}`, `{value}` and the
    # choice's other params, `{configuration}`, filled in.
    confirm: str | None = None


STUDIES = {
    # Three cells, two labels, two lengths: rates over 100 seeds, and how far the converged members hold.
    "cells": Study(
        (
            f"{CELLS} -S 'targets.mode=running,final' -S 'data.min_len=null,1' -S train.population=100 "
            "-S train.seed=2000 -S 'evaluate.lengths=[500,10000,100000]' -S evaluate.sequences_per_length=100",
        )
    ),
    # Delétang et al.'s best of 10 seeds x 3 learning rates, then the rate at the chosen one on 100 fresh seeds.
    "deletang": Study(
        (f"{CELLS} {RATES} -S train.population=10 -S train.seed=3000 -S train.epochs=30 {DELETANG}",),
        choose="train.learning_rate",
        confirm="{configuration} -S {key}={value} -S train.population=100 -S train.seed=3100 -S train.epochs=30 "
        f"{DELETANG}",
    ),
    # The same protocol as the cells grow, at one learning rate: where does a simple RNN start to learn parity?
    "width": Study(
        (
            f"{CELLS} -S 'train.units=1,2,4,8' -S train.learning_rate=0.01 -S train.population=10 -S train.seed=4000 "
            f"{DELETANG}",
        ),
    ),
    # The two engines on the same 50 seeds of the defaults.
    "engines": Study(("-S 'train.engine=fused,keras' -S train.population=50 -S train.seed=0",)),
    # The selection rule confirmed on seeds no tuning looked at: 25 runs of 8 members.
    "confirmation": Study(("-S 'train.seed=range(1000,1200,8)' -S train.population=8",)),
    # Seeds as separate runs and as one population: the same rate, in less time.
    "seeds": Study(("-S 'train.seed=range(0,20)'", "-S train.seed=0 -S train.population=20")),
}
SEEDS = re.compile(r"train.seed=[0-9]+")
QUEUED = re.compile(r"Queued experiment '([^']+)' for future execution")
# How often the queue is asked whether it is done.
POLL_S = 2


def run_grid(repo: Path, grid: str | list[str], jobs: int) -> dict:
    """Queue a grid (or several, each one `dvc exp run --queue`), run them with `jobs` workers until the queue is
    empty; the commands, the experiments' names and the wall time."""
    started, grids = time.perf_counter(), [grid] if isinstance(grid, str) else grid
    names = [name for one in grids for name in QUEUED.findall(dvc(repo, "exp", "run", "--queue", *shlex.split(one)))]
    assert names, f"no experiment queued by {grids}"
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    # The workers outlive the command: with its output captured, waiting for it would wait for the whole queue.
    with environment(NUMBA_NUM_THREADS=threads):
        subprocess.run(
            [sys.executable, "-m", "dvc", "queue", "start", "-j", str(jobs)],
            cwd=repo,
            env=pipeline_environment(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
    while re.search(r"Queued|Running", status := dvc(repo, "queue", "status")):
        time.sleep(POLL_S)
    assert "Failed" not in status, status
    wall = time.perf_counter() - started
    print(f"{len(names)} experiments in {wall:.0f} s: {grids}", flush=True)
    return {"command": "\n".join(f"dvc exp run --queue {one}" for one in grids), "experiments": names, "wall_s": wall}


def follow_ups(study: Study, choices: list[dict]) -> list[str]:
    """The confirmation grids of a study's choices."""
    if not study.confirm:
        return []
    grids = []
    for choice in choices:
        configuration = " ".join(f"-S {shlex.quote(override(*item))}" for item in choice["configuration"].items())
        grids.append(study.confirm.format(configuration=configuration, key=study.choose, value=choice["chosen"]))
    return grids


def measure(name: str, scratch: Path, jobs: list[int]) -> dict:
    """Study `name` with jobs[0] workers; then with each other number of workers, its wall time and whether it gave
    the same tables."""
    result = run_study(name, scratch / f"{name}-j{jobs[0]}", jobs[0])
    tables = ("rows", "choices", "confirmed")
    for other in jobs[1:]:
        again = run_study(name, scratch / f"{name}-j{other}", other)
        same = all(again.get(key) == result.get(key) for key in tables)
        result.setdefault("compared", []).append(
            {"jobs": other, "grid_walls_s": grid_walls(again), "same_tables": same}
        )
    return result


def run_study(name: str, scratch: Path, jobs: int) -> dict:
    """Run study `name` in a scratch repo: its grids, then those its choices lead to; the summary of each stage."""
    study = STUDIES[name]
    repo = default_run_repo(scratch)
    grids = [run_grid(repo, grid, jobs) for grid in study.grids]
    exp_show = json.loads(dvc(repo, "exp", "show", "--json", stderr=False))
    rows = summarise(exp_show, names={name for grid in grids for name in grid["experiments"]})
    result = {"jobs": jobs, "grids": grids, "rows": rows}
    if study.choose:
        result["choices"] = chosen(rows, study.choose)
        # Queued together, so that the queue's workers share them.
        confirmations = [run_grid(repo, grids, jobs)] if (grids := follow_ups(study, result["choices"])) else []
        if confirmations:
            exp_show = json.loads(dvc(repo, "exp", "show", "--json", stderr=False))
            names = {name for grid in confirmations for name in grid["experiments"]}
            result |= {"confirmations": confirmations, "confirmed": summarise(exp_show, names=names)}
    result["wall_s"] = sum(grid_walls(result))
    return result


def section(result: dict) -> str:
    """A study on the results page: its commands, its tables, and each grid's wall time."""
    name = result["stamp"]["command"].split("--parts ")[1].split()[0]
    study = STUDIES[name]
    jobs = result["jobs"]
    commands = [grid["command"] for grid in result["grids"]] + [f"dvc queue start -j {jobs}"]
    choose = ["--choose", study.choose] if study.choose else []
    # Where a study confirms its choices, one repository holds both: each summary names its grid's first seed.
    where = ["--where", re.search(SEEDS, study.grids[0])[0]] if result.get("confirmations") else []
    parts = ["```bash", *commands, summary_command(*choose, *where), "```", "", table(result["rows"])]
    if note := agreement(result["rows"]):
        parts += ["", note]
    if study.choose:
        parts += ["", choice_table(result["choices"], study.choose)]
    if result.get("confirmations"):
        confirmed = summary_command("--where", re.search(SEEDS, study.confirm)[0])
        then = [grid["command"] for grid in result["confirmations"]] + [f"dvc queue start -j {jobs}", confirmed]
        parts += ["", "Then at each chosen value, on fresh seeds:", "", "```bash", *then, "```", ""]
        parts.append(table(result["confirmed"]))
    walls = grid_walls(result)
    parts += ["", f"Wall time, each grid in turn, {workers(jobs)}: {seconds(walls)}."]
    for other in result.get("compared", []):
        ratio = sum(other["grid_walls_s"]) / sum(walls)
        tables = "the same tables" if other["same_tables"] else "**other tables**"
        parts.append(
            f"With {workers(other['jobs'])}: {seconds(other['grid_walls_s'])} ({ratio:.2f}x the time), {tables}."
        )
    return "\n".join(parts)


def summary_command(*options: str) -> str:
    """The command that turns a sweep's experiments into its tables."""
    return " ".join(["dvc exp show --json | python -m tools.summarise", *options])


def grid_walls(result: dict) -> list[float]:
    """The wall time of each grid a study ran, in turn: its grids, then its confirmations."""
    return [grid["wall_s"] for grid in result["grids"] + result.get("confirmations", [])]


def workers(jobs: int) -> str:
    return f"{jobs} queue worker" + ("s" if jobs > 1 else "")


def seconds(walls: list[float]) -> str:
    return ", ".join(f"{wall:.0f} s" for wall in walls) + (f", {sum(walls):.0f} s in all" if len(walls) > 1 else "")
