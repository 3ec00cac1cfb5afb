"""Render every measured figure in README.md and docs/ from the stored results: bench/results/<part>.json (each with
its stamp) and the committed run's metrics/. The hook for authors: change the code, re-run the part (`python -m
bench --parts <part>`), render (`python -m bench.docs`); never edit a figure by hand. tests/test_docs.py fails when a
page is not what the results render, when a stored result has no stamp, or when prose holds a figure with no source.

Markers in the pages:

    <!-- generated PART -->                 a part's table, rendered with its command and stamp, up to
    <!-- end -->
    <!-- figure NAME -->1.0<!-- /figure -->    one figure inside a sentence, FIGURES[NAME]
    <!-- quote -->under 2 minutes<!-- /quote -->   a figure from elsewhere (a paper, the reference program's claims)

    python -m bench.docs             render in place
    python -m bench.docs --check     name the sections that differ from what the results render; exit 1 if any
"""

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from bench import airflow_dags, population, scale, scoring, speed, studies, suite
from bench.harness import RESULTS
from devkit import mutation, reproducibility
from devkit.scratch_repo import REPO
from parity_lstm.rates import wilson

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# The body is empty or ends in a newline, so an empty section never reaches over to the next one's end.
GENERATED = re.compile(r"(<!-- generated (?P<name>[\w.]+) -->\n)(?P<body>(?:.*?\n)??)(<!-- end -->)", re.S)
FIGURE = re.compile(r"(<!-- figure (?P<name>[\w.]+) -->)(?P<body>.*?)(<!-- /figure -->)", re.S)
# What a stamp must hold for a result to name its code, date and machine.
STAMP_KEYS = ("commit", "date", "cpu_model", "cores", "load_average_before", "load_average_after", "engine", "threads")


def stored(part: str, folder: Path = RESULTS) -> dict:
    return json.loads((folder / f"{part}.json").read_text())


def source_line(part: str, result: dict) -> str:
    """Where a table comes from (stored in bench/results/<part>.json): its command, commit, date and machine."""
    stamp = result["stamp"]
    commit = stamp["commit"][:7] + (" with uncommitted changes" if stamp.get("uncommitted_changes") else "")
    load = "/".join(f"{stamp[when][0]:.2f}" for when in ("load_average_before", "load_average_after"))
    machine = f"{stamp['cpu_model']}, {stamp['cores']} cores, load {load}"
    return f"`{stamp['command']}` · `{commit}` {stamp['date'][:10]} · {machine}"


# Sections rendered from a stored result's numbers; any other name is a stored table: `part` its `table`, `part.key`
# its `key`.
RENDERERS: dict[str, Callable[[dict], str]] = {
    "speed": lambda result: speed.table(result["repeats"]),
    "population": population.table,
    "airflow": airflow_dags.table,
    "scoring": scoring.table,
    "suite": suite.table,
    "scale": scale.table,
    "reproducibility": reproducibility.table,
    # The reasons why survivors are equivalent are written after the run: the survivors' listing as it stands.
    "mutation": lambda result: mutation.summary(result["modules"], mutation.equivalent())["table"],
} | {name: studies.section for name in studies.STUDIES}


def rates_chart(result: dict) -> dict:
    """Converged members by cell, labels and lengths, with 95 % Wilson intervals: a Vega-Lite spec."""
    values = []
    for row in result["rows"]:
        configuration, members = row["configuration"], row["members"].values()
        converged = sum(member["epoch"] is not None for member in members)
        low, high = wilson(converged, len(members))
        lengths = "lengths 1-50" if configuration["data.min_len"] else "length 50"
        label = f"{configuration['targets.mode']} labels, {lengths}"
        share, cell = converged / len(members), configuration["train.cell"]
        values.append({"cell": cell, "labels, lengths": label, "converged": share, "low": low, "high": high})
    y = {"field": "labels, lengths", "type": "nominal", "title": None}
    x = {"field": "converged", "type": "quantitative", "scale": {"domain": [0, 1]}, "title": "share converged"}
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": values},
        "facet": {"row": {"field": "cell", "type": "nominal", "title": None}},
        "spec": {
            "width": 360,
            "layer": [
                {"mark": "rule", "encoding": {"y": y, "x": x | {"field": "low"}, "x2": {"field": "high"}}},
                {"mark": {"type": "point", "filled": True}, "encoding": {"y": y, "x": x}},
            ],
        },
    }


# Pictures rendered from a stored result: path -> (part, the Vega-Lite spec of its result).
IMAGES: dict[str, tuple[str, Callable[[dict], dict]]] = {
    "docs/images/convergence_rates.svg": ("cells", rates_chart),
}


def image(path: str) -> str:
    import vl_convert

    part, spec = IMAGES[path]
    return vl_convert.vegalite_to_svg(spec(stored(part)))


def stale_images() -> list[str]:
    """The pictures that differ from what their stored results draw."""
    return [path for path in IMAGES if not (REPO / path).is_file() or (REPO / path).read_text() != image(path)]


def section(name: str, folder: Path = RESULTS) -> str:
    """A section's table, rendered from its part's stored result, then where it comes from."""
    part, _, key = name.partition(".")
    result = stored(part, folder)
    body = RENDERERS[name](result) if name in RENDERERS else result[key or "table"]
    return f"{body}\n\n{source_line(part, result)}\n"


def metric(path: str, *keys: str, digits: int = 4) -> Callable[[], str]:
    """A figure of the committed run's metrics (`dvc repro` writes them, git keeps them)."""

    def figure() -> str:
        value = json.loads((REPO / path).read_text())
        for key in keys:
            value = value[key]
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    return figure


def studies_minutes(page: str) -> Callable[[], str]:
    """The wall time of a page's studies, one after another: the sum of their stored runs' grids, in minutes."""

    def figure() -> str:
        parts = [match["name"] for match in GENERATED.finditer((REPO / page).read_text())]
        return f"{sum(stored(part)['wall_s'] for part in parts if part in studies.STUDIES) / 60:.0f}"

    return figure


FIGURES: dict[str, Callable[[], str]] = {
    "results_page_minutes": studies_minutes("docs/results.md"),
    "final_step_accuracy": metric("metrics/evaluate.json", "final_step_accuracy"),
    "sequence_accuracy": metric("metrics/evaluate.json", "sequence_accuracy"),
    "mean_final_confidence": metric("metrics/evaluate.json", "mean_final_confidence"),
    "final_step_accuracy_at_10000": metric("metrics/evaluate.json", "by_length", "10000", "final_step_accuracy"),
    "converged_epoch": metric("metrics/train/metrics.json", "converged_epoch"),
}


def rendered(text: str) -> str:
    """A page with every generated section and figure rendered from the stored results."""
    text = GENERATED.sub(lambda match: match[1] + section(match["name"]) + match[4], text)
    return FIGURE.sub(lambda match: match[1] + FIGURES[match["name"]]() + match[4], text)


def differences(path: Path) -> list[str]:
    """The sections and figures of a page that differ from what the stored results render."""

    def bodies(text: str) -> list[tuple[str, str]]:
        return [(match["name"], match["body"]) for pattern in (GENERATED, FIGURE) for match in pattern.finditer(text)]

    text = path.read_text()
    return [name for (name, old), (_, new) in zip(bodies(text), bodies(rendered(text)), strict=True) if old != new]


def main(arguments: list[str]) -> None:
    if arguments == ["--check"]:
        stale = {str(path.relative_to(REPO)): names for path in PAGES if (names := differences(path))}
        stale |= {path: ["the picture"] for path in stale_images()}
        for page, names in stale.items():
            print(f"{page}: {', '.join(names)} differ from the stored results; run `python -m bench.docs`")
        raise SystemExit(1 if stale else 0)
    if arguments:
        raise SystemExit("usage: python -m bench.docs [--check]")
    for path in PAGES:
        text = path.read_text()
        if (fresh := rendered(text)) != text:
            path.write_text(fresh)
            print(f"rendered {path.relative_to(REPO)}")
    for path in stale_images():
        (REPO / path).write_text(image(path))
        print(f"drew {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
