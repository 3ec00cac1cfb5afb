"""Draw the plots of dvc.yaml as SVG pictures for the README, offline, from the pipeline's own plot data.

    dvc repro && python -m tools.pictures            # docs/images/<plot>.svg and its spec with data, <plot>.json

The charts are those of `dvc plots show` (its filled-in Vega-Lite specs, templates included), less what only tells
revisions apart (`one_revision`), drawn by vl-convert, which needs no browser and no network.

    python -m tools.pictures --page                  # .dvc/plots/page.html, the HTML template of `dvc plots show`

The page template, named in .dvc/config, has the Vega libraries inline and a declared charset, so the page that
`dvc plots show` writes renders offline.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import vl_convert

IMAGES = Path("docs/images")
# A legend label "file.tsv::field" (or "field") as "field".
FIELD_ONLY = "peek(split(datum.label, '::'))"
PAGE_TEMPLATE = Path(".dvc/plots/page.html")
PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>parity-lstm plots</title>
<script>{bundle}</script>
</head>
<body>
{{plot_divs}}
</body>
</html>
"""


def file_name(title: str) -> str:
    """A plot's title as a file name: "Held-out accuracy by test length (...)" -> held_out_accuracy_by_test_length."""
    return re.sub(r"\W+", "_", title.split("(")[0].split(":")[0].lower()).strip("_")


def one_revision(spec: dict) -> dict:
    """A spec of `dvc plots show` as drawn for the workspace alone: no revision legend, series named by their fields.

    DVC colours every chart by revision, so with one revision the colour legend says only "rev: workspace": the
    colour becomes a plain value. Several y fields are told apart by dash and point shape, keyed "field" or, across
    files, "file.tsv::field": their legend names the fields alone, untitled. The HTML page of `dvc plots show` and
    `dvc plots diff` keep DVC's spec, where the colour does tell revisions apart.
    """
    revisions = spec.get("encoding", {}).get("color", {}).get("scale", {})
    if len(revisions.get("domain", [])) != 1:
        return spec
    colour = revisions["range"][0]

    def redraw(node):
        if isinstance(node, list):
            return [redraw(item) for item in node]
        if not isinstance(node, dict):
            return node
        node = {key: redraw(value) for key, value in node.items()}
        channels = {key: value for key, value in node.items() if isinstance(value, dict)}
        if channels.get("color", {}).get("field") == "rev":
            node["color"] = {"value": colour}
        for channel in ("strokeDash", "shape"):
            if channel in channels:
                node[channel] = named_by_field(channels[channel])
        return node

    return redraw(spec)


def named_by_field(encoding: dict) -> dict:
    """A series encoding whose legend labels "file.tsv::field" as "field", where the fields alone tell them apart."""
    fields = [series.split("::")[-1] for series in encoding.get("scale", {}).get("domain", [])]
    if encoding.get("field") not in ("field", "filename::field") or len(set(fields)) < len(fields):
        return encoding
    return {**encoding, "legend": {**encoding.get("legend", {}), "title": None, "labelExpr": FIELD_ONLY}}


def draw_plots() -> list[Path]:
    shown = subprocess.run(
        [sys.executable, "-m", "dvc", "plots", "show", "--json"], capture_output=True, text=True, check=True
    )
    plots = json.loads(shown.stdout)
    if plots.get("errors"):
        raise SystemExit(f"pictures: dvc plots show reports {plots['errors']}; run `dvc repro` (or `dvc pull`) first")
    IMAGES.mkdir(parents=True, exist_ok=True)
    written = []
    for title, renders in plots["data"].items():
        spec = one_revision(renders[0]["content"])
        path = IMAGES / f"{file_name(title)}.svg"
        path.write_text(vl_convert.vegalite_to_svg(spec))
        # The spec with its data, in git beside the picture: what the picture shows, and what the docs say of it.
        path.with_suffix(".json").write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n")
        written.extend([path, path.with_suffix(".json")])
    return written


def main(arguments: list[str]) -> None:
    if arguments == ["--page"]:
        PAGE_TEMPLATE.write_text(PAGE.format(bundle=vl_convert.javascript_bundle()))
        print(f"wrote {PAGE_TEMPLATE}")
    elif arguments:
        raise SystemExit("usage: python -m tools.pictures [--page]")
    else:
        for path in draw_plots():
            print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
