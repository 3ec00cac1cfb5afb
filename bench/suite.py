"""Part `suite`: the test suite's wall time at each revision of --revs. Run only when named.

    python -m bench --parts suite [--revs HEAD 94c594f ...]

Each revision is cloned from this repository into the scratch folder and runs
`python -m pytest -q -p no:cacheprovider --durations=15` there with CI=true, on this interpreter and its packages,
and, at revisions whose tests have a slow tier, the whole suite as .ci/run runs it (`--slow`): wall time, pytest's
summary line, its exit status and the slowest durations. A failing suite is recorded, not raised: its time is still
a measurement.
"""

import argparse
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from devkit.scratch_repo import REPO, pipeline_environment, run

SLOWEST = 15
PYTEST = ("-m", "pytest", "-q", "-p", "no:cacheprovider", f"--durations={SLOWEST}")
# One line of pytest's slowest-durations list: "<seconds>s call     tests/test_x.py::test_y".
DURATION = re.compile(r"^\d+(\.\d+)?s +(setup|call|teardown) +\S")
# Lines of output kept with a failed run, to see why it failed.
FAILURE_TAIL = 40


def commit_of(rev: str) -> str | None:
    """The commit `rev` names in this repository, or None."""
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    return found.stdout.strip() if found.returncode == 0 else None


def revision(rev: str) -> str:
    """`rev`, if it names a commit of this repository: --revs is checked as it is parsed, before any part runs."""
    if commit_of(rev) is None:
        raise argparse.ArgumentTypeError(f"{rev!r} names no commit of {REPO}")
    return rev


def time_suite(clone: Path, *options: str) -> dict:
    """Run the test suite in `clone` as CI does (CI=true, no cache left behind) with pytest `options`; time it."""
    env = pipeline_environment() | {"CI": "true"}
    started = time.perf_counter()
    tested = subprocess.run([sys.executable, *PYTEST, *options], cwd=clone, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    lines = tested.stdout.splitlines()
    result = {
        "wall_s": wall,
        "returncode": tested.returncode,
        # pytest -q ends with its summary, "<n> passed in <seconds>s" (framed by "=" when something failed).
        "summary": next((line.strip("= ") for line in reversed(lines) if line.strip()), ""),
        "durations": [line for line in lines if DURATION.match(line)][:SLOWEST],
    }
    if tested.returncode != 0:
        result["output_tail"] = (lines + tested.stderr.splitlines())[-FAILURE_TAIL:]
    return result


def measure(scratch: Path, revs: list[str]) -> dict:
    runs = []
    for index, rev in enumerate(revs):
        commit = commit_of(rev)  # --revs names commits only (`revision`)
        clone = scratch / f"suite-{index}-{commit[:12]}"
        run(scratch, "git", "clone", "--quiet", "--no-checkout", str(REPO), str(clone))
        run(clone, "git", "checkout", "--quiet", "--detach", commit)
        tiers = [()]
        if "--slow" in (clone / "tests/conftest.py").read_text():
            tiers.append(("--slow",))
        for options in tiers:
            command = shlex.join(["python", "-m", "pytest", *options])
            print(f"{command} at {rev} ({commit[:12]}) ...", flush=True)
            runs.append({"rev": rev, "commit": commit, "command": command} | time_suite(clone, *options))
            print(f"{runs[-1]['summary']} ({runs[-1]['wall_s']:.0f} s wall)", flush=True)
    return {"runs": runs}


def table(result: dict) -> str:
    lines = ["| command | wall | result |", "| --- | --- | --- |"]
    lines += [f"| `{one['command']}` | {one['wall_s']:.0f} s | {one['summary']} |" for one in result["runs"]]
    return "\n".join(lines)
