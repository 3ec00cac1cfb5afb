"""Part `confirmation`: the reliable configuration (`dvc exp run -S train.population=8`) once per seed of --seeds,
queued in one scratch repo and run by CONFIRMATION_WORKERS queue workers, and its convergence table. Run only
when named.

    python -m bench --parts confirmation [--seeds 1000 1008 ...]
"""

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.harness import default_run_repo
from bench.scratch_repo import dvc, pipeline_environment

CONFIRMATION_POPULATION = 8
# The confirmation seeds: train.seed 1000, 1008, ..., 1792, so members are seeds 1000-1799, none seen in tuning.
CONFIRMATION_SEEDS = tuple(range(1000, 1800, CONFIRMATION_POPULATION))
CONFIRMATION_WORKERS = 2
# How often the finished runs are stored while the queue runs.
STORE_EVERY_S = 60


def measure(scratch: Path, seeds: list[int], store: Callable[[dict], None]) -> dict:
    """`dvc exp run -S train.seed=<seed> -S train.population=8` for each seed, queued in one scratch repo whose default
    run is done and run by CONFIRMATION_WORKERS queue workers, and the convergence table of those experiments. The
    finished runs are stored as the queue runs, so a long confirmation interrupted keeps what it measured."""
    from stages.convergence import summarise, table

    repo = default_run_repo(scratch / "confirmation")
    names = [f"confirm-{seed}" for seed in seeds]
    population = f"train.population={CONFIRMATION_POPULATION}"
    for name, seed in zip(names, seeds, strict=True):
        dvc(repo, "exp", "run", "--queue", "-n", name, "-S", f"train.seed={seed}", "-S", population)
    # The workers outlive the command: with its output captured, waiting for it would wait for the whole queue.
    start = [sys.executable, "-m", "dvc", "queue", "start", "-j", str(CONFIRMATION_WORKERS)]
    subprocess.run(
        start, cwd=repo, env=pipeline_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
    )

    def finished() -> dict:
        rows = summarise(json.loads(dvc(repo, "exp", "show", "--json", stderr=False)), names=set(names))
        done = sorted(seed for row in rows for seed in row["runs"])
        return {"seeds": seeds, "finished_seeds": done, "rows": rows, "table": table(rows)}

    while re.search(r"Queued|Running", dvc(repo, "queue", "status")):
        time.sleep(STORE_EVERY_S)
        store(result := finished())
        print(f"{len(result['finished_seeds'])}/{len(seeds)} runs done", flush=True)
    assert "Failed" not in dvc(repo, "queue", "status"), dvc(repo, "queue", "status")
    result = finished()
    store(result)
    return result
