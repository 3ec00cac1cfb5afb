"""What the benchmark's parts share: timing commands, the default data in memory, scratch repos whose default run is
done, and the stamped result files, bench/results/<part>.json."""

import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import numpy as np
import yaml

from devkit.scratch_repo import REPO, commit, dvc, make_scratch_repo, run
from devkit.settings import environment

RESULTS = REPO / "bench/results"
# The CPU flags a stamp names: those that decide which kernels XLA and oneDNN compile for.
STAMPED_FEATURES = {"avx", "avx2", "fma", "avx512f", "avx512_vnni", "amx_tile"}
STAMPED_PACKAGES = ("numba", "numpy", "tensorflow-cpu", "keras", "dvc", "dvclive")
# A timing taken beside other work measures that work too: a timed part starts only once the load average (its last
# minute) is at most this much a core, and waits for it, asking every IDLE_POLL_S.
IDLE_LOAD_PER_CORE, IDLE_POLL_S = 0.5, 10


def timed(function: Callable, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def stage(repo: Path, name: str) -> float:
    """Wall time of one stage run on its own in `repo`, as `python -m stages.<name>`."""
    return timed(run, repo, sys.executable, "-m", f"stages.{name}")


def measured(repo: Path, *command: str) -> dict:
    """Wall time and peak memory of one process, sampled every 50 ms from the kernel's own counts: resident (all
    mapped pages, file pages included; VmHWM, the peak since the process started its program) and anonymous (the
    process's own memory, without page cache). Popen returns once the command's program has started, so these are its
    own. Not the peak `wait4` gives, which also counts this process's memory, the command's before it started."""
    peaks = {"VmHWM": 0, "RssAnon": 0}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    status = Path(f"/proc/{process.pid}/status")

    def sample() -> None:
        while process.poll() is None:
            try:
                fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
                for name in peaks:
                    peaks[name] = max(peaks[name], int(fields[name].split()[0]))
            except (OSError, KeyError, ValueError):
                pass  # the process is starting or gone
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stderr = process.stderr.read()
    process.wait()
    wall = time.perf_counter() - started
    sampler.join()
    assert process.returncode == 0, f"{' '.join(command)} failed:\n{stderr}"
    return {"wall_s": wall, "peak_rss_mib": peaks["VmHWM"] / 1024, "peak_anon_mib": peaks["RssAnon"] / 1024}


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@contextmanager
def training_environment() -> Iterator[None]:
    """The environment the keras engine trains in, for training in this process or in processes started inside:
    TensorFlow's settings (importing parity_lstm.engines.keras sets them, and TensorFlow reads them as it loads)
    and the engine's XLA options (XLA reads them at its first compile). The XLA options go after, so that later
    parts' processes, the reference program's among them, start from the bench's own environment."""
    from parity_lstm.engines.keras.xla import set_training_options

    with environment(XLA_FLAGS=os.environ.get("XLA_FLAGS"), TF_XLA_FLAGS=os.environ.get("TF_XLA_FLAGS")):
        set_training_options(os.environ)
        yield


def default_data() -> tuple[dict, tuple[np.ndarray, ...]]:
    """The default params (params.yaml) and, in memory, the arrays `train` reads for them from the files `generate` and
    `targets` write: training bits, parity and loss factors, validation bits and parity."""
    from parity_lstm.data.encoding import running_parity
    from parity_lstm.data.loss import loss_factors
    from parity_lstm.data.sampling import sequences, splits
    from parity_lstm.params import DataParams

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    data = DataParams(**params["data"])
    bits, val_bits = (np.concatenate(list(sequences(seed, count, data))) for _, seed, count in splits(data)[:2])
    factors = loss_factors(bits, params["targets"]["mode"])
    return params, (bits, running_parity(bits), factors, val_bits, running_parity(val_bits))


def default_run_repo(path: Path) -> Path:
    """A scratch repo whose default run is done and committed: later runs restore its data stages."""
    repo = make_scratch_repo(path)
    dvc(repo, "repro")
    commit(repo, "default run")
    return repo


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


def stamp() -> dict:
    """What a result was measured with: the code's commit, the date, the machine, its load average as the part
    starts (`store` adds it as the part ends), the default engine and its threads, and the library versions."""
    import numba

    cpu = cpu_info()
    # Results stored by earlier parts of the same run are no change to the code measured.
    status = ("git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results")
    changed = run(REPO, *status, stderr=False)
    return {
        "commit": run(REPO, "git", "rev-parse", "HEAD", stderr=False).strip(),
        "uncommitted_changes": bool(changed.strip()),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu["model"],
        "cpu_id": cpu["id"],
        "cpu_features": sorted(cpu["flags"] & STAMPED_FEATURES),
        "cores": os.cpu_count(),
        "load_average_before": os.getloadavg(),
        "engine": yaml.safe_load((REPO / "params.yaml").read_text())["train"]["engine"],
        "threads": numba.config.NUMBA_NUM_THREADS,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {package: version(package) for package in STAMPED_PACKAGES},
    }


def wait_until_idle(part: str, wait_s: float) -> None:
    """Return once the machine is idle (IDLE_LOAD_PER_CORE); refuse the part, saying why, after `wait_s` seconds."""
    limit = IDLE_LOAD_PER_CORE * (os.cpu_count() or 1)
    deadline = time.monotonic() + wait_s
    while (load := os.getloadavg()[0]) > limit:
        if time.monotonic() >= deadline:
            raise SystemExit(
                f"bench: {part} not run: the load average stayed above {limit:.1f} ({IDLE_LOAD_PER_CORE} a core) for "
                f"{wait_s:.0f} s, now {load:.2f}; a timing beside other work measures that work too. Stop it, or wait "
                "longer (--idle-wait)."
            )
        print(f"{part}: waiting for an idle machine: load average {load:.2f}, above {limit:.1f}", flush=True)
        time.sleep(IDLE_POLL_S)


def store(part: str, stamped: dict, result: dict, *, out: Path) -> None:
    """Write one part's result with its stamp, and the load average now, to `out`/<part>.json, replacing the last."""
    out.mkdir(parents=True, exist_ok=True)
    stamped = stamped | {"load_average_after": os.getloadavg()}
    (out / f"{part}.json").write_text(json.dumps({"stamp": stamped} | result, indent=2) + "\n")
