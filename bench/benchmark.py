"""Benchmark: the reference program's method against this pipeline with the default params, and the pipeline at scale.

    python bench/benchmark.py [--parts speed streaming scale] [--repeats 3] [--seeds 1000 1008 ...]

speed      wall times and speed-ups over the baseline (bench/reference.py, ~2 minutes, run once after each
           pipeline repeat); each pipeline repeat runs a clean `dvc repro` with the defaults in a fresh scratch
           repo (no DVC cache, no run-cache; XLA compiles from scratch) and the no-op after it, a clean run in a
           second fresh repo with the opt-in persistent XLA cache, empty, and in a third with that cache warm (the
           defaults' run first, between or last, in turn), then each stage on its own; medians of both sides are
           shown (~16 minutes)
streaming  `train` at the default size streamed from the files against the in-memory `train` of commit
           IN_MEMORY_REV, alternated on the same data
scale      1e9 bits (10,000,000 sequences of 100) through `generate` and `targets`, and one epoch of `train`
           on them: wall time, throughput and peak memory of each process (~4 minutes, ~6 GB of disk)
population seconds per epoch of a population of K 1-unit members at the default size, K = 1, 4, 20, 100
           (~6 minutes)
seeds      the reference settings' convergence over seeds 0-19 two ways, in one run: 20 queued `dvc exp run`s
           (`dvc queue start -j 2`) against one `dvc exp run -S train.population=20` (~10 minutes)
airflow    one grid of AIRFLOW_SEEDS default-size experiments (seeds 0-7) run two ways, each in a scratch repo of
           its own whose default run is done: `dvc queue start -j 2`, then the `parity_lstm_sweep` DAG under
           `airflow standalone` with 2 parallel tasks (LocalExecutor, SQLite); wall time from queueing or
           triggering to the last result (~8 minutes)
members    tuning evidence for the selection rule: a population of 100 (seeds 0-99, reference settings), each
           member's validation final-step accuracy and its final-step accuracy on 1,000 fresh sequences of length
           10,000 from a stream no stage draws (not the test set) (~12 minutes)
reproducibility
           the default run's `train` and `evaluate` under every XLA instruction-set ceiling this CPU allows, oneDNN
           on and off, and 1 and all intra-op threads: model md5, final training loss, held-out metrics (~10 minutes)
variants   the defaults, seed 2 and the label and length variants (`targets.mode`, `data.min_len`), one
           `dvc exp run` each: held-out figures and length generalization (~4 minutes)
confirmation
           the reliable configuration (`dvc exp run -S train.population=8`) once per seed of --seeds, queued in one
           scratch repo and run by two queue workers, and its convergence table

Prints tables and writes each part's, with every measurement and a stamp (commit, date, CPU model, cores, library
versions), to bench/results/<part>.json.
"""

import argparse
import functools
import hashlib
import itertools
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # so that `python bench/benchmark.py` finds the project's packages

import yaml  # noqa: E402

from tests.scratch_repo import commit, dvc, make_scratch_repo, pipeline_environment, run, set_param  # noqa: E402

# Speed-up over the reference method a clean `dvc repro` with the defaults must reach (XLA compiles from scratch).
END_TO_END_TARGET = 5
# The last commit whose `train` held the whole training set in memory.
IN_MEMORY_REV = "2e8db1f"
SCALE_PARAMS = {"count": 10_000_000, "seq_len": 100, "test_count": 10_000}
SCALE_MEMORY_LIMIT_MIB = 512
NOOP_LIMIT_S = 1.0
# XLA_FLAGS and TF_XLA_FLAGS as the bench found them, before any part imports `stages`, which adds to both.
STARTING_XLA_ENVIRONMENT = {name: os.environ.get(name) for name in ("XLA_FLAGS", "TF_XLA_FLAGS")}
EARLY_STOP_ACCURACY = 0.99


def timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def stage(repo: Path, name: str) -> float:
    return timed(run, repo, sys.executable, "-m", f"stages.{name}")


def measured(repo: Path, *command: str) -> dict:
    """Wall time and peak memory of one process: resident (all mapped pages, file pages included) from the
    kernel's own count, and anonymous (the process's own memory, without page cache) sampled every 50 ms."""
    peak_anon_kib = 0
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    status = Path(f"/proc/{process.pid}/status")

    def sample() -> None:
        nonlocal peak_anon_kib
        while process.returncode is None:
            try:
                fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
                peak_anon_kib = max(peak_anon_kib, int(fields["RssAnon"].split()[0]))
            except (OSError, KeyError, ValueError):
                pass  # the process is starting or gone
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stderr = process.stderr.read()
    _, exit_status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(exit_status)
    wall = time.perf_counter() - started
    sampler.join()
    assert process.returncode == 0, f"{' '.join(command)} failed:\n{stderr}"
    return {"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024, "peak_anon_mib": peak_anon_kib / 1024}


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@contextmanager
def environment(**variables: str | None) -> Iterator[None]:
    """Processes started inside see these environment variables (None: unset); the old values come back after."""
    before = {name: os.environ.get(name) for name in variables}

    def put(values: dict) -> None:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    put(variables)
    try:
        yield
    finally:
        put(before)


def measure_pipeline(default: Path, cache_first: Path, cache_warm: Path, default_at: int) -> dict:
    """One repeat, each clean run in a fresh scratch repo of its own (no DVC cache, no run-cache): end to end with
    the defaults (XLA compiles from scratch, as in every run without the opt-in cache) and the no-op after it; end
    to end with the opt-in persistent XLA cache, first empty (the run fills it), then warm; then each stage again on
    its own and the early-stop variant. The defaults' run goes first, between or last as `default_at` says (0, 1,
    2), so that over the repeats no row always holds the same place in the sequence."""
    result = {}

    def defaults() -> None:
        result["end_to_end_s"] = timed(dvc, default, "repro")
        result["noop_s"] = timed(dvc, default, "repro")

    def with_cache(name: str, repo: Path) -> None:
        # `train` keeps XLA's compilations in this folder (TensorFlow's persistent cache), shared by both repos.
        xla_cache = cache_first.parent / f"{cache_first.name}-xla"
        with environment(TF_XLA_FLAGS=f"--tf_xla_persistent_cache_directory={xla_cache}"):
            result[name] = timed(dvc, repo, "repro")

    runs = [
        lambda: with_cache("end_to_end_cache_first_s", cache_first),
        lambda: with_cache("end_to_end_warm_s", cache_warm),
    ]
    runs.insert(default_at, defaults)
    for run_one in runs:
        run_one()
    return result | measure_stages(default)


def measure_stages(repo: Path) -> dict:
    result = {
        "held_out": read_json(repo / "metrics/evaluate.json"),
        "data_s": stage(repo, "generate") + stage(repo, "targets"),
        "train_s": stage(repo, "train"),
        "evaluate_s": stage(repo, "evaluate"),
        "predict_s": timed(run, repo, sys.executable, "-m", "stages.predict", "1011001"),
    }
    set_param(repo, "train", "stop_at_accuracy", EARLY_STOP_ACCURACY)
    result["early_stop_train_s"] = stage(repo, "train")
    result["early_stop_epochs"] = read_json(repo / "metrics/train/metrics.json")["step"] + 1
    stage(repo, "evaluate")
    result["early_stop_held_out"] = read_json(repo / "metrics/evaluate.json")
    return result


def measure_baseline(test_bits: Path) -> dict:
    """The reference program, run as a user runs it: without the XLA options that importing `stages` adds to this
    process's environment (most other parts import it)."""
    out = test_bits.with_name("baseline.json")
    with environment(**STARTING_XLA_ENVIRONMENT):
        command = (sys.executable, "-m", "bench.reference", "2", str(test_bits), str(out))
        result = {"end_to_end_s": timed(run, ROOT, *command)}
    return json.loads(out.read_text()) | result


def speed_table(baseline: dict, pipeline: dict) -> str:
    def row(label, base, ours, target=""):
        speedup = f"{base / ours:.1f}x" if base else "-"
        base_text = f"{base:.2f} s" if base else "-"
        return f"| {label} | {base_text} | {ours:.2f} s | {speedup} | {target} |"

    held_out = pipeline["held_out"]["final_step_accuracy"]
    early_held_out = pipeline["early_stop_held_out"]["final_step_accuracy"]
    return "\n".join(
        [
            "| step | baseline | pipeline | speed-up | target |",
            "| --- | --- | --- | --- | --- |",
            row("data: `generate` + `targets`", baseline["data_s"], pipeline["data_s"]),
            row("`train`: 10 epochs, start-up and compilation included", baseline["train_s"], pipeline["train_s"]),
            row("`evaluate` (8 test lengths up to 10,000)", None, pipeline["evaluate_s"], "<= 2.5 s"),
            row("`python -m stages.predict 1011001`", None, pipeline["predict_s"], "<= 1.5 s"),
            row(
                "end to end: clean `dvc repro`, defaults (XLA compiles from scratch)",
                baseline["end_to_end_s"],
                pipeline["end_to_end_s"],
                f">= {END_TO_END_TARGET}x",
            ),
            row(
                "end to end: clean `dvc repro`, opt-in XLA cache, empty (this run fills it)",
                baseline["end_to_end_s"],
                pipeline["end_to_end_cache_first_s"],
            ),
            row(
                "end to end: clean `dvc repro`, opt-in XLA cache, warm",
                baseline["end_to_end_s"],
                pipeline["end_to_end_warm_s"],
            ),
            row("no-op `dvc repro`", None, pipeline["noop_s"], f"<= {NOOP_LIMIT_S:.0f} s"),
            row(
                f"`train` until validation final-step accuracy >= {EARLY_STOP_ACCURACY} "
                f"({pipeline['early_stop_epochs']} epochs)",
                baseline["train_s"],
                pipeline["early_stop_train_s"],
            ),
            "",
            f"Held-out final-step accuracy: baseline {baseline['held_out']['final_step_accuracy']:.4f}, "
            f"pipeline {held_out:.4f}, pipeline with early stop {early_held_out:.4f}.",
        ]
    )


def median_of(runs: list[dict]) -> dict:
    """Median of every timing; accuracies are the same in every repeat (seeded), so the first is kept."""
    merged = dict(runs[0])
    for key in [key for key in merged if key.endswith("_s")]:
        merged[key] = statistics.median(run[key] for run in runs)
    return merged


def measure_speed(scratch: Path, repeats: int) -> dict:
    runs, baselines = [], []
    for repeat in range(repeats):
        repos = (make_scratch_repo(scratch / f"repeat{repeat}{kind}") for kind in ("", "-cache", "-warm"))
        runs.append(measure_pipeline(*repos, default_at=repeat % 3))
        print(f"pipeline repeat {repeat + 1}/{repeats}: {runs[-1]['end_to_end_s']:.1f} s end to end", flush=True)
        # A baseline run after each pipeline repeat: both sample the same stretches of the machine's drifting speed.
        baselines.append(measure_baseline(scratch / f"repeat{repeat}/data/test_bits.npy"))
        print(f"baseline repeat {repeat + 1}/{repeats}: {baselines[-1]['end_to_end_s']:.1f} s end to end", flush=True)
    baseline, pipeline = median_of(baselines), median_of(runs)
    return {
        "baseline": baseline,
        "baseline_repeats": baselines,
        "pipeline_median": pipeline,
        "pipeline_repeats": runs,
        "table": speed_table(baseline, pipeline),
    }


def measure_streaming(scratch: Path, repeats: int) -> dict:
    """`train` at the default size streamed from the files, and with the data in memory as at IN_MEMORY_REV,
    alternated on the same data so that the machine's drifting speed hits both alike. Both run with today's XLA
    options (IN_MEMORY_REV predates them). Each scores 10,000 held-out sequences an epoch: today's `train` the
    validation set, IN_MEMORY_REV's the test set (before the validation split)."""
    stages_environment()  # both sides' processes inherit it, today's XLA options included

    streamed = make_scratch_repo(scratch / "streamed")
    dvc(streamed, "repro", "targets")
    in_memory = scratch / "in_memory"
    shutil.copytree(streamed, in_memory, ignore=shutil.ignore_patterns("stages", ".git", ".dvc"))
    archive = subprocess.run(["git", "archive", IN_MEMORY_REV, "stages"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x"], input=archive.stdout, cwd=in_memory, check=True)
    # IN_MEMORY_REV's strict params refuse the keys added since (`data.val_count`, `train.population`): give it
    # today's values of the keys it knows.
    known = yaml.safe_load(run(ROOT, "git", "show", f"{IN_MEMORY_REV}:params.yaml", stderr=False))
    today = yaml.safe_load((streamed / "params.yaml").read_text())
    params = {section: {key: today[section][key] for key in keys} for section, keys in known.items()}
    (in_memory / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    runs = {"in_memory": [], "streamed": []}
    for repeat in range(repeats):
        for name, repo in (("in_memory", in_memory), ("streamed", streamed)):
            runs[name].append(measured(repo, sys.executable, "-m", "stages.train"))
        print(f"train repeat {repeat + 1}/{repeats}: in memory, then streamed", flush=True)
    # Same data, seed and batch size; only the order of the batches differs (IN_MEMORY_REV used Dataset.shuffle).
    trained = {
        name: read_json(repo / "metrics/train/metrics.json")
        for name, repo in (("in_memory", in_memory), ("streamed", streamed))
    }
    medians = {
        name: {key: statistics.median(run[key] for run in measured_runs) for key in measured_runs[0]}
        for name, measured_runs in runs.items()
    }
    labels = {"in_memory": f"whole set in memory (commit {IN_MEMORY_REV})", "streamed": "streamed from the files"}
    lines = ["| `train`, default params | median wall | each run | peak resident |", "| --- | --- | --- | --- |"]
    for name, label in labels.items():
        each = ", ".join(f"{run['wall_s']:.1f}" for run in runs[name])
        lines.append(
            f"| {label} | {medians[name]['wall_s']:.2f} s | {each} s | {medians[name]['peak_rss_mib']:.0f} MiB |"
        )
    ratio = medians["streamed"]["wall_s"] / medians["in_memory"]["wall_s"]
    losses = ", ".join(f"{labels[name].split(' (')[0]} {trained[name]['train']['loss']:.4f}" for name in labels)
    lines += ["", f"Streamed / in memory: {ratio:.2f}. Final training loss: {losses}."]
    return {"runs": runs, "median": medians, "trained": trained, "table": "\n".join(lines)}


def measure_scale(scratch: Path) -> dict:
    """1e9 bits through `generate` and `targets`, then one epoch of `train` streamed from them."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(SCALE_PARAMS)
    params["train"]["epochs"] = 1
    repo = make_scratch_repo(scratch / "scale", params)
    data = params["data"]
    bits = (data["count"] + data["val_count"] + data["test_count"]) * data["seq_len"]
    result = {}
    for name in ("generate", "targets", "train"):
        print(f"{name} at scale ...", flush=True)
        result[name] = measured(repo, sys.executable, "-m", f"stages.{name}")
    result["data_gib"] = {path.name: path.stat().st_size / 2**30 for path in sorted((repo / "data").iterdir())}
    result["train_metrics"] = read_json(repo / "metrics/train/metrics.json")

    def row(name: str, throughput: str) -> str:
        figures = result[name]
        return (
            f"| `{name}` | {figures['wall_s']:.1f} s | {throughput} | {figures['peak_rss_mib']:.0f} MiB "
            f"| {figures['peak_anon_mib']:.0f} MiB |"
        )

    sequences_per_s = SCALE_PARAMS["count"] / result["train"]["wall_s"]
    met = "met" if result["generate"]["peak_rss_mib"] <= SCALE_MEMORY_LIMIT_MIB else "NOT met"
    result["table"] = "\n".join(
        [
            f"{bits:,} bits: {data['count']:,} training, {data['val_count']:,} validation and {data['test_count']:,} "
            f"test sequences of {data['seq_len']}; files: {sum(result['data_gib'].values()):.1f} GiB",
            "",
            "| process | wall | throughput | peak resident | peak anonymous |",
            "| --- | --- | --- | --- | --- |",
            row("generate", f"{bits / result['generate']['wall_s'] / 1e6:.0f} M bits/s"),
            row("targets", f"{bits / result['targets']['wall_s'] / 1e6:.0f} M bits/s"),
            row("train", f"1 epoch, {sequences_per_s:,.0f} sequences/s"),
            "",
            f"`generate` peak resident memory <= {SCALE_MEMORY_LIMIT_MIB} MiB: {met}. Resident counts the data files' "
            "pages `train` reads through its memory maps; anonymous is the process's own memory.",
        ]
    )
    return result


POPULATIONS = (1, 4, 20, 100)
POPULATION_EPOCHS = 3
SWEEP_SEEDS = 20
SEEDS_RATIO_TARGET = 1 / 3


def stages_environment() -> None:
    """Import `stages` before TensorFlow loads in this process, so that its environment defaults (oneDNN off, XLA's
    options) hold here as in every stage's own process."""
    import stages  # noqa: F401


def measure_population(scratch: Path, repeats: int) -> dict:
    """Seconds per epoch (the median of epochs 2 on: epoch 1 includes compiling) of `train`'s population at the
    default size, for each of POPULATIONS, in this process, on the default training and validation data."""
    stages_environment()
    import keras

    from stages.common import DataParams, TrainParams, running_parity
    from stages.targets import supervised_steps
    from stages.train import train
    from tests.arrays import generated

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    bits, val_bits, _ = generated(DataParams(**params["data"]))
    parity, supervised, val_parity = running_parity(bits), supervised_steps(bits, "running"), running_parity(val_bits)

    class EpochTimes(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.started)

    result = {}
    for members in POPULATIONS:
        train_params = TrainParams(**params["train"] | {"population": members, "epochs": POPULATION_EPOCHS})
        timer = EpochTimes()
        started = time.perf_counter()
        train(bits, parity, supervised, val_bits, val_parity, train_params, callbacks=[timer])
        result[members] = {"epochs_s": timer.times, "total_s": time.perf_counter() - started}
        print(f"population {members}: epochs {', '.join(f'{t:.1f}' for t in timer.times)} s", flush=True)
    one = statistics.median(result[1]["epochs_s"][1:])
    lines = [
        "| members K | seconds per epoch | x one member | seconds per member-epoch |",
        "| --- | --- | --- | --- |",
    ]
    for members, figures in result.items():
        epoch = statistics.median(figures["epochs_s"][1:])
        lines.append(f"| {members} | {epoch:.2f} | {epoch / one:.1f} | {epoch / members:.3f} |")
    return {"runs": result, "table": "\n".join(lines)}


def wait_for_queue(repo: Path) -> None:
    run(repo, "sh", "-c", "while dvc queue status | grep -qE 'Queued|Running'; do sleep 1; done")
    assert "Failed" not in dvc(repo, "queue", "status")


def default_run_repo(path: Path) -> Path:
    """A scratch repo whose default run is done and committed: later runs restore its data stages."""
    repo = make_scratch_repo(path)
    dvc(repo, "repro")
    commit(repo, "default run")
    return repo


def time_queued_seeds(repo: Path, seeds: int) -> float:
    """Wall time of queueing `train.seed` 0 to seeds - 1 and running them with two queue workers."""
    started = time.perf_counter()
    dvc(repo, "exp", "run", "--queue", "-S", f"train.seed=range(0, {seeds})")
    dvc(repo, "queue", "start", "-j", "2")
    wait_for_queue(repo)
    elapsed = time.perf_counter() - started
    print(f"{seeds} queued runs: {elapsed:.0f} s", flush=True)
    return elapsed


def measure_seeds(scratch: Path, repeats: int) -> dict:
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
        "| seeds 0-19, reference settings | wall time |",
        "| --- | --- |",
        f"| {SWEEP_SEEDS} queued `dvc exp run`s, `dvc queue start -j 2` | {separate_s:.0f} s |",
        f"| one `dvc exp run -S train.population={SWEEP_SEEDS}` | {population_s:.0f} s |",
        "",
        f"Population / separate runs: {ratio:.3f} (target <= {SEEDS_RATIO_TARGET:.3f}: {met}).",
        "",
        table(rows),
    ]
    return {"separate_s": separate_s, "population_s": population_s, "rows": rows, "table": "\n".join(lines)}


AIRFLOW_SEEDS = 8


def airflow_environment(home: Path, dags: Path) -> dict:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "2",  # as `dvc queue start -j 2`
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }


def airflow_cli(env: dict, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"airflow {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def sweep_state(env: dict) -> str | None:
    """The state of the one run of parity_lstm_sweep, once Airflow has one."""
    listed = airflow_cli(env, "dags", "list-runs", "parity_lstm_sweep", "-o", "json").splitlines()
    runs = [json.loads(line) for line in listed if line.startswith("[{")]  # the JSON line among Airflow's log lines
    return runs[0][0]["state"] if runs else None


def measure_airflow(scratch: Path, repeats: int) -> dict:
    """The same grid through DVC's queue and through Airflow, both starting from a repo whose data stages ran."""
    from stages.convergence import summarise, table

    # One repo each: in one repo, the second method would restore the first one's runs from the run-cache.
    queue_repo, repo = default_run_repo(scratch / "queue"), default_run_repo(scratch / "airflow")
    queue_s = time_queued_seeds(queue_repo, AIRFLOW_SEEDS)
    queued_show = json.loads(dvc(queue_repo, "exp", "show", "--json", stderr=False))

    env = airflow_environment(scratch / "airflow-home", repo / "dags")
    airflow_cli(env, "db", "migrate")  # before the scheduler starts, so that the CLI can read the database at once
    started = time.perf_counter()
    with open(scratch / "airflow-standalone.log", "w") as log:
        command = [sys.executable, "-m", "airflow", "standalone"]
        standalone = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
        try:
            # Wait until the DAG processor has registered the DAG, then trigger the sweep and wait for its end.
            while "parity_lstm_sweep" not in airflow_cli(env, "dags", "list"):
                time.sleep(2)
            startup_s = time.perf_counter() - started
            airflow_cli(env, "dags", "unpause", "parity_lstm_sweep")
            started = time.perf_counter()
            airflow_cli(
                env,
                "dags",
                "trigger",
                "parity_lstm_sweep",
                "-c",
                json.dumps({"grid": {"train.seed": list(range(AIRFLOW_SEEDS))}}),
            )
            while (state := sweep_state(env)) not in ("success", "failed"):
                time.sleep(5)
            airflow_s = time.perf_counter() - started
        finally:  # the scheduler, api-server, DAG processor, triggerer and their workers
            os.killpg(standalone.pid, signal.SIGTERM)
            standalone.wait()
    assert state == "success", f"the sweep DAG run {state}: see {scratch / 'airflow-standalone.log'}"
    print(f"the same grid through Airflow: {airflow_s:.0f} s (+ {startup_s:.0f} s to start it)", flush=True)
    swept = set(dvc(repo, "exp", "ls", "--name-only", stderr=False).split())
    exp_show = json.loads(dvc(repo, "exp", "show", "--json", stderr=False))
    lines = [
        f"| {AIRFLOW_SEEDS} default-size experiments (seeds 0-{AIRFLOW_SEEDS - 1}), 2 at a time | wall time |",
        "| --- | --- |",
        f"| `dvc exp run --queue` + `dvc queue start -j 2` | {queue_s:.0f} s |",
        f"| `parity_lstm_sweep` DAG, `airflow standalone`, parallelism 2 | {airflow_s:.0f} s |",
        "",
        f"`airflow standalone` took {startup_s:.0f} s to start and register the DAG (not counted above).",
        "",
        "Queued runs:",
        "",
        table(summarise(queued_show, names=set(dvc(queue_repo, "exp", "ls", "--name-only", stderr=False).split()))),
        "",
        "Airflow runs:",
        "",
        table(summarise(exp_show, names=swept)),
    ]
    return {"queue_s": queue_s, "airflow_s": airflow_s, "startup_s": startup_s, "table": "\n".join(lines)}


FRESH_LENGTH, FRESH_SEQUENCES, FRESH_STREAM = 10_000, 1_000, 987_654
HOLDS = 0.999


def measure_members(scratch: Path, repeats: int) -> dict:
    """Per member of a population of 100 (the default params but `train.population`): does a perfect score on the
    validation set at the training length go with holding at length 10,000?"""
    stages_environment()
    import keras
    import numpy as np

    from stages.common import CONVERGED, DataParams, TrainParams, running_parity
    from stages.targets import supervised_steps
    from stages.train import Validation, train
    from tests.arrays import generated

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    bits, val_bits, _ = generated(DataParams(**params["data"]))
    train_params = TrainParams(**params["train"] | {"population": 100, "seed": 0})
    trained = train(
        bits, running_parity(bits), supervised_steps(bits, "running"), val_bits, running_parity(val_bits), train_params
    )
    fresh = np.random.default_rng([FRESH_STREAM, FRESH_LENGTH]).integers(
        0, 2, (FRESH_SEQUENCES, FRESH_LENGTH), dtype=np.uint8
    )
    scorer = Validation(fresh, running_parity(fresh))
    scorer.set_model(keras.Sequential([keras.Input((None, 2)), trained.population]))
    scorer.on_train_begin()
    at_length, validation = scorer.accuracy(), trained.val_accuracy[-1]
    converged, holds, perfect = validation >= CONVERGED, at_length >= HOLDS, validation == 1.0
    figures = {
        "converged": int(converged.sum()),
        "converged_and_hold": int((converged & holds).sum()),
        "converged_not_hold": int((converged & ~holds).sum()),
        "not_hold_at_validation_1": int((converged & ~holds & perfect).sum()),
        "hold_at_validation_1": int((holds & perfect).sum()),
    }
    table = (
        f"Members of one population of 100 (seeds 0-99): {figures['converged']} converged on validation; of those, "
        f"{figures['converged_and_hold']} hold >= {HOLDS} at length {FRESH_LENGTH} on fresh sequences and "
        f"{figures['converged_not_hold']} do not; validation accuracy 1.0: {figures['hold_at_validation_1']} of "
        f"those that hold, {figures['not_hold_at_validation_1']} of those that do not."
    )
    members = {"validation": validation.tolist(), "at_length": at_length.tolist()}
    return {"figures": figures, "members": members, "table": table}


# XLA's instruction-set ceilings (`--xla_cpu_max_isa`) from the oldest up; "host": no ceiling, all this CPU has.
ISA_LEVELS = ("SSE4_2", "AVX", "AVX2", "AVX512", "host")
# The CPU flag each ceiling needs: a ceiling above what the CPU has would change nothing.
ISA_FLAGS = {"SSE4_2": "sse4_2", "AVX": "avx", "AVX2": "avx2", "AVX512": "avx512f"}


def cpu_info() -> dict:
    """The CPU's model name and flags, as Linux reports them."""
    lines = (line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in lines}
    return {
        "model": fields.get("model name", ""),
        # Virtual machines may show a generic model name: family, model and stepping still tell CPUs apart.
        "id": f"family {fields.get('cpu family')}, model {fields.get('model')}, stepping {fields.get('stepping')}",
        "flags": set(fields.get("flags", "").split()),
    }


def file_md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def measure_reproducibility(scratch: Path, repeats: int) -> dict:
    """`train` and `evaluate` with the defaults under each XLA instruction-set ceiling the CPU supports, oneDNN on and
    off, and 1 and the default number of intra-op threads, on the same data: what each run's outputs are."""
    repo = make_scratch_repo(scratch / "reproducibility")
    dvc(repo, "repro", "targets")
    flags = cpu_info()["flags"]
    levels = [level for level in ISA_LEVELS if level == "host" or ISA_FLAGS[level] in flags]
    runs = []
    for level, onednn, threads in itertools.product(levels, ("0", "1"), (None, "1")):
        xla_flags = STARTING_XLA_ENVIRONMENT["XLA_FLAGS"] or ""
        if level != "host":
            xla_flags = f"{xla_flags} --xla_cpu_max_isa={level}".strip()
        with environment(XLA_FLAGS=xla_flags or None, TF_ENABLE_ONEDNN_OPTS=onednn, TF_NUM_INTRAOP_THREADS=threads):
            train_s = stage(repo, "train")
            stage(repo, "evaluate")
        plots = sorted((repo / "metrics/train/plots").rglob("*.tsv"))
        runs.append(
            {
                "isa": level,
                "onednn": onednn == "1",
                "intra_op_threads": int(threads or os.cpu_count()),
                "train_s": train_s,
                "model_md5": file_md5(repo / "models/model.keras"),
                "train_metrics": read_json(repo / "metrics/train/metrics.json"),
                "train_plots_md5": {str(path.relative_to(repo)): file_md5(path) for path in plots},
                "evaluate": read_json(repo / "metrics/evaluate.json"),
                "evaluate_md5": file_md5(repo / "metrics/evaluate.json"),
                "evaluate_states_md5": file_md5(repo / "metrics/evaluate_states.csv"),
            }
        )
        print(f"{level}, oneDNN {onednn}, threads {threads or 'default'}: {runs[-1]['model_md5']}", flush=True)
    lines = [
        "| XLA ISA ceiling | oneDNN | intra-op threads | model md5 | final training loss | evaluate.json md5 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for figures in runs:
        lines.append(
            f"| {figures['isa']} | {'on' if figures['onednn'] else 'off'} | {figures['intra_op_threads']} "
            f"| `{figures['model_md5'][:8]}` | {figures['train_metrics']['train']['loss']!r} "
            f"| `{figures['evaluate_md5'][:8]}` |"
        )
    return {"runs": runs, "table": "\n".join(lines)}


# One seed each (single draws, not rates): the label and length variants from the defaults, and a second seed.
VARIANTS = {
    "defaults": {},
    "seed 2": {"train.seed": 2},
    "running labels, lengths 1-50": {"data.min_len": 1},
    "final labels, fixed length": {"targets.mode": "final"},
    "final labels, lengths 1-50": {"targets.mode": "final", "data.min_len": 1},
}


def measure_variants(scratch: Path, repeats: int) -> dict:
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


CONFIRMATION_POPULATION = 8
# The confirmation seeds: train.seed 1000, 1008, ..., 1792, so members are seeds 1000-1799, none seen in tuning.
CONFIRMATION_SEEDS = tuple(range(1000, 1800, CONFIRMATION_POPULATION))
CONFIRMATION_WORKERS = 2


def measure_confirmation(scratch: Path, seeds: list[int], store: Callable[[dict], None]) -> dict:
    """`dvc exp run -S train.seed=<seed> -S train.population=8` for each seed, queued in one scratch repo whose default
    run is done and run by CONFIRMATION_WORKERS queue workers, and the convergence table of those experiments. The
    finished runs are stored every minute, so a long confirmation interrupted keeps what it measured."""
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
        time.sleep(60)
        store(result := finished())
        print(f"{len(result['finished_seeds'])}/{len(seeds)} runs done", flush=True)
    assert "Failed" not in dvc(repo, "queue", "status"), dvc(repo, "queue", "status")
    result = finished()
    store(result)
    return result


PARTS = {
    "speed": measure_speed,
    "streaming": measure_streaming,
    "scale": measure_scale,
    "population": measure_population,
    "seeds": measure_seeds,
    "airflow": measure_airflow,
    "members": measure_members,
    "reproducibility": measure_reproducibility,
    "variants": measure_variants,
    "confirmation": measure_confirmation,
}
RESULTS = ROOT / "bench/results"


def stamp() -> dict:
    """What a result was measured with: the code's commit, the date, the machine and the library versions."""
    cpu = cpu_info()
    changed = run(ROOT, "git", "status", "--porcelain", "--untracked-files=no", stderr=False).strip()
    return {
        "commit": run(ROOT, "git", "rev-parse", "HEAD", stderr=False).strip(),
        "uncommitted_changes": bool(changed),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu["model"],
        "cpu_id": cpu["id"],
        "cpu_features": sorted(cpu["flags"] & {"avx", "avx2", "fma", "avx512f", "avx512_vnni", "amx_tile"}),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {package: version(package) for package in ("tensorflow-cpu", "keras", "numpy", "dvc", "dvclive")},
    }


def store(part: str, stamped: dict, result: dict, *, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{part}.json").write_text(json.dumps({"stamp": stamped} | result, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=[p for p in PARTS if p != "confirmation"])
    parser.add_argument("--repeats", type=int, default=3, help="repeats of timed runs (medians are reported)")
    parser.add_argument("--seeds", type=int, nargs="+", default=CONFIRMATION_SEEDS, help="the confirmation's seeds")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the folder of the parts' results")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        for part in args.parts:
            started, stamped = time.perf_counter(), stamp()  # the code and machine as the part starts
            if part == "confirmation":
                result = measure_confirmation(
                    Path(scratch), list(args.seeds), functools.partial(store, part, stamped, out=args.out)
                )
            elif part == "scale":
                result = measure_scale(Path(scratch))
            else:
                result = PARTS[part](Path(scratch), args.repeats)
            store(part, stamped, result | {"part_wall_s": time.perf_counter() - started}, out=args.out)
            print(result["table"], flush=True)


if __name__ == "__main__":
    main()
