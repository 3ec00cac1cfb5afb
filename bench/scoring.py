"""Part `scoring`: what scoring a population member by member adds to `evaluate`, at the default params.

    python -m bench --parts scoring [--repeats 3]

In a scratch repo whose default run is done, `python -m stages.evaluate` with models/members.npy holding K members
(K of POPULATIONS; the selected model unchanged), each K once a repeat, in an order that reverses from one repeat to
the next: wall time and peak memory. What a member's weights are does not change what scoring it costs.
"""

import sys
from pathlib import Path

from bench.harness import default_run_repo, measured
from parity_lstm.model import MEMBERS_FILE, Layout, initial_members, save_members

POPULATIONS = (1, 20, 100)


def measure(scratch: Path, repeats: int) -> dict:
    repo = default_run_repo(scratch / "scoring")
    runs = {members: [] for members in POPULATIONS}
    for repeat in range(repeats):
        for members in POPULATIONS[:: 1 if repeat % 2 == 0 else -1]:
            save_members(initial_members(0, members, Layout(1)), repo / MEMBERS_FILE)
            runs[members].append(measured(repo, sys.executable, "-m", "stages.evaluate"))
            print(f"evaluate, {members} members: {runs[members][-1]['wall_s']:.2f} s", flush=True)
    return {"runs": {str(members): one for members, one in runs.items()}}


def table(result: dict) -> str:
    lines = ["| members scored | `evaluate`, each repeat | peak resident |", "| --- | --- | --- |"]
    for members, runs in result["runs"].items():
        seconds = ", ".join(f"{run['wall_s']:.2f}" for run in runs)
        lines.append(f"| {members} | {seconds} s | {max(run['peak_rss_mib'] for run in runs):.0f} MiB |")
    return "\n".join(lines)
