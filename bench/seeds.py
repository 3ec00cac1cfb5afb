"""Part `seeds`: the reference settings' convergence over seeds 0 to SWEEP_SEEDS - 1 two ways, in one run:
SWEEP_SEEDS queued `dvc exp run`s (`dvc queue start -j 2`) against one population of them,
`dvc exp run -S train.seed=0 -S train.population=SWEEP_SEEDS`.

    python -m bench --parts seeds
"""

import json
import time
from pathlib import Path

from bench.harness import default_run_repo, time_queued_seeds
from bench.scratch_repo import dvc

SWEEP_SEEDS = 20
# The population must cost at most this share of the separate runs for one population run to be worth it.
SEEDS_RATIO_TARGET = 1 / 3


def measure(scratch: Path) -> dict:
    """The reference settings over seeds 0 to SWEEP_SEEDS - 1, as separate queued runs and as one population, in
    one scratch repo whose data stages ran first (both restore them from the cache)."""
    from stages.convergence import summarise, table

    repo = default_run_repo(scratch / "seeds")
    separate_s = time_queued_seeds(repo, SWEEP_SEEDS)
    started = time.perf_counter()
    dvc(repo, "exp", "run", "-S", "train.seed=0", "-S", f"train.population={SWEEP_SEEDS}")
    population_s = time.perf_counter() - started
    print(f"one population of {SWEEP_SEEDS}: {population_s:.0f} s", flush=True)
    # The committed default run is one of the queued runs again (the same params): counted once.
    rows = summarise(json.loads(dvc(repo, "exp", "show", "--json", stderr=False)))
    ratio = population_s / separate_s
    met = "met" if ratio <= SEEDS_RATIO_TARGET else "not met"
    lines = [
        f"| seeds 0-{SWEEP_SEEDS - 1}, reference settings | wall time |",
        "| --- | --- |",
        f"| {SWEEP_SEEDS} queued `dvc exp run`s, `dvc queue start -j 2` | {separate_s:.0f} s |",
        f"| one `dvc exp run -S train.population={SWEEP_SEEDS}` | {population_s:.0f} s |",
        "",
        f"Population / separate runs: {ratio:.3f} (target <= {SEEDS_RATIO_TARGET:.3f}: {met}).",
        "",
        table(rows),
    ]
    return {"separate_s": separate_s, "population_s": population_s, "rows": rows, "table": "\n".join(lines)}
