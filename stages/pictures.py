"""Draw the plots of dvc.yaml as SVG pictures for the README, offline, from the pipeline's own plot data.

    dvc repro && python -m stages.pictures            # docs/images/<plot>.svg, one per plot in dvc.yaml

The charts are exactly those of `dvc plots show` (its filled-in Vega-Lite specs, templates included), drawn by
vl-convert, which needs no browser and no network. `python -m stages.pictures --page` also writes the HTML
template that .dvc/config names for `dvc plots show`: the Vega libraries inline and a declared charset, so the
page it writes renders offline.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import vl_convert

IMAGES = Path("docs/images")
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
        spec = renders[0]["content"]
        path = IMAGES / f"{file_name(title)}.svg"
        path.write_text(vl_convert.vegalite_to_svg(spec))
        written.append(path)
    return written


def main(arguments: list[str]) -> None:
    if arguments == ["--page"]:
        PAGE_TEMPLATE.write_text(PAGE.format(bundle=vl_convert.javascript_bundle()))
        print(f"wrote {PAGE_TEMPLATE}")
    elif arguments:
        raise SystemExit("usage: python -m stages.pictures [--page]")
    else:
        for path in draw_plots():
            print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
