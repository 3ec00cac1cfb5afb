"""Run parts of the benchmark: each prints its table and stores its result with a stamp (commit, date, CPU, cores,
library versions) in bench/results/<part>.json.

    python -m bench [--parts speed scale ...] [--repeats 3] [--jobs 2 [1 ...]] [--revs HEAD ...] [--out DIR]

Each part's module (bench/<part>.py; `airflow`: bench/airflow_dags.py; the studies of docs/results.md:
bench/studies.py; the checks that time nothing, `mutation` and `reproducibility`: devkit/<part>.py) says what it
measures.
"""

import argparse
import functools
import os
import shlex
import tempfile
import time
from pathlib import Path

from bench import airflow_dags, docs, population, scale, scoring, speed, studies, suite
from bench.harness import RESULTS, stamp, store, wait_until_idle
from devkit import mutation, reproducibility
from devkit.scratch_repo import REPO

# Each part's measure() with the options it takes: (scratch folder, parsed arguments, store a partial result).
PARTS = {
    "speed": lambda scratch, args, keep: speed.measure(scratch, args.repeats),
    "scale": lambda scratch, args, keep: scale.measure(scratch),
    "population": lambda scratch, args, keep: population.measure(scratch, args.floor_probe),
    "scoring": lambda scratch, args, keep: scoring.measure(scratch, args.repeats),
    "airflow": lambda scratch, args, keep: airflow_dags.measure(scratch),
    "reproducibility": lambda scratch, args, keep: reproducibility.measure(scratch),
    "suite": lambda scratch, args, keep: suite.measure(scratch, args.revs),
    "mutation": lambda scratch, args, keep: mutation.measure(scratch, keep),
} | {name: lambda scratch, args, keep, name=name: studies.measure(name, scratch, args.jobs) for name in studies.STUDIES}
# Run only when named: the studies are rates over seeds (an hour on 2 cores), not timings; the suite times the tests
# rather than the pipeline; mutation testing tests the tests, for hours.
ON_REQUEST = (*studies.STUDIES, "suite", "mutation")
# Devkit's checks count and compare bytes; every other part waits for an idle machine (harness.wait_until_idle).
UNTIMED = ("mutation", "reproducibility")
# The options each part reads: its stamp's command names them, so that the command reproduces that part alone.
PART_OPTIONS = {
    "speed": ("repeats",),
    "population": ("floor_probe",),
    "scoring": ("repeats",),
    "suite": ("revs",),
} | {name: ("jobs",) for name in studies.STUDIES}


def part_command(part: str, args: argparse.Namespace) -> str:
    """The command that measures `part` alone with the options this run gave it."""
    words = ["python", "-m", "bench", "--parts", part]
    for option in PART_OPTIONS.get(part, ()):
        value = getattr(args, option)
        if isinstance(value, Path):  # a file as seen from this repository, not where this machine keeps it
            value = os.path.relpath(value.resolve(), REPO)
        if value is not None:
            words += [f"--{option.replace('_', '-')}", *map(str, value if isinstance(value, list | tuple) else [value])]
    return shlex.join(words)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=PARTS,
        default=[part for part in PARTS if part not in ON_REQUEST],
        help=f"the parts to run, in this order (default: all but {' and '.join(ON_REQUEST)})",
    )
    parser.add_argument("--repeats", type=int, default=3, help="repeats of timed runs (medians are reported)")
    parser.add_argument(
        "--jobs",
        type=int,
        nargs="+",
        default=[2],
        help="a study's queue workers (`dvc queue start -j`); more values run the study again with each, timed only",
    )
    parser.add_argument(
        "--revs", type=suite.revision, nargs="+", default=["HEAD"], help="the revisions whose test suite `suite` times"
    )
    parser.add_argument(
        "--floor-probe", type=Path, help="`population`: the floor probe's file, to time its training step beside ours"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="the folder of the parts' results")
    parser.add_argument(
        "--idle-wait", type=float, default=600, help="seconds a timed part waits for an idle machine before refusing"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        for part in args.parts:
            if part not in UNTIMED:
                wait_until_idle(part, args.idle_wait)
            started = time.perf_counter()
            stamped = stamp() | {"command": part_command(part, args)}  # the code and machine as the part starts
            keep = functools.partial(store, part, stamped, out=args.out)
            result = PARTS[part](Path(scratch), args, keep)
            store(part, stamped, result | {"part_wall_s": time.perf_counter() - started}, out=args.out)
            print(docs.section(part, args.out), flush=True)


if __name__ == "__main__":
    main()
