"""Part `scale`: 1e9 bits (10,000,000 sequences of 100) through `generate` and `targets`, and one epoch of `train`
on them: wall time, throughput and peak memory of each process. Writes the data files of 1e9 bits (several GB)
to the scratch folder.

    python -m bench --parts scale
"""

import sys
from pathlib import Path

import yaml

from bench.harness import measured, read_json
from devkit.scratch_repo import REPO, make_scratch_repo

SCALE_PARAMS = {"count": 10_000_000, "seq_len": 100, "test_count": 10_000}
# `generate` writes block by block: its memory must not grow with the data set.
SCALE_MEMORY_LIMIT_MIB = 512


def measure(scratch: Path) -> dict:
    """1e9 bits through `generate` and `targets`, then one epoch of `train` streamed from them."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"].update(SCALE_PARAMS)
    params["train"]["epochs"] = 1
    repo = make_scratch_repo(scratch / "scale", params)
    result = {}
    for name in ("generate", "targets", "train"):
        print(f"{name} at scale ...", flush=True)
        result[name] = measured(repo, sys.executable, "-m", f"stages.{name}")
    result["data_gib"] = {path.name: path.stat().st_size / 2**30 for path in sorted((repo / "data").iterdir())}
    result["train_metrics"] = read_json(repo / "metrics/train/metrics.json")

    return result


def table(result: dict) -> str:
    data = yaml.safe_load((REPO / "params.yaml").read_text())["data"] | SCALE_PARAMS
    bits = (data["count"] + data["val_count"] + data["test_count"]) * data["seq_len"]

    def row(name: str, throughput: str) -> str:
        figures = result[name]
        return (
            f"| `{name}` | {figures['wall_s']:.1f} s | {throughput} | {figures['peak_rss_mib']:.0f} MiB "
            f"| {figures['peak_anon_mib']:.0f} MiB |"
        )

    sequences_per_s = SCALE_PARAMS["count"] / result["train"]["wall_s"]
    met = "met" if result["generate"]["peak_rss_mib"] <= SCALE_MEMORY_LIMIT_MIB else "NOT met"
    return "\n".join(
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
