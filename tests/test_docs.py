"""The docs cannot drift: every measured figure in README.md and docs/ is rendered from a stored, stamped result
(bench/docs.py), prose holds no figure of its own, and the pages stay short."""

import json
import re
from pathlib import Path

import pytest
import yaml

from bench import docs
from bench.harness import RESULTS
from devkit import mutation
from devkit.scratch_repo import REPO

PAGES = {str(path.relative_to(REPO)): path for path in docs.PAGES}


# A figure from elsewhere (a paper, the reference program's claims): `<!-- quote -->under 2 minutes<!-- /quote -->`.
QUOTE = re.compile(r"<!-- quote -->.*?<!-- /quote -->", re.S)
# A figure as measurements are written: a decimal, a number with a unit of time, size or ratio, a percentage, a count
# out of a count. Settings and sizes that are not measured (`train.epochs: 10`, seeds 0-99) are plain integers or code.
MEASURED = re.compile(
    r"(?<![\w.])\d[\d,]*(?:\.\d+)?\s?(?:%|x|s|ms|min|MiB|GiB|MB|GB|words)(?![\w])"
    r"|(?<![\w.])\d[\d,]*(?:\.\d+)?\s(?:seconds?|minutes?|hours?|days?|percent|times)(?![\w])"
    r"|(?<![\w.])\d[\d,]*\.\d+(?![\w.])"
    r"|(?<![\w./])\d+/\d+(?![\w/])"
)


def prose(text: str) -> str:
    """A page less what may hold figures: generated sections, figures, quotes, code, blockquotes, links' targets."""
    for pattern in (docs.GENERATED, docs.FIGURE, QUOTE, re.compile(r"```.*?```", re.S), re.compile(r"`[^`\n]*`")):
        text = pattern.sub(" ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)  # a link's target
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"\b95 %(?=\s+(?:Wilson|interval))", " ", text)  # an interval's confidence: a setting, not a figure
    return "\n".join(line for line in text.splitlines() if not line.startswith(">"))


def words(text: str) -> int:
    """The words a reader reads through: tokens with a letter or digit, outside the markers (HTML comments) and the
    generated sections (a study's commands and tables, looked up rather than read)."""
    text = re.sub(r"<!--.*?-->", " ", docs.GENERATED.sub(" ", text), flags=re.S)
    return sum(bool(re.search(r"[^\W_]", token)) for token in text.split())


def unsourced_figures(path: Path) -> list[str]:
    """Figures in a page's prose with no stored source: each must be generated, or marked as a quote."""
    return MEASURED.findall(prose(path.read_text()))


# A number as prose writes it: 100,000, 0.99, 50 (not the 2 of range(0,2) or the 4 of 1,2,4,8 in a code span).
NUMBER = re.compile(r"(?<![\w.\-/,])(?:\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?![\w,]\d|\w)")
# Names, not figures: a version (Keras 3) or a citation's year (Delétang et al. 2023, ICLR 2023).
NAMED = re.compile(r"\b(?:Keras|Airflow|Python|python|TensorFlow|al\.|ICLR)\s\d+")


def param_values(node) -> set[str]:
    if isinstance(node, dict):
        return set().union(*map(param_values, node.values()))
    if isinstance(node, list):
        return set().union(set(), *map(param_values, node))
    return {str(node)} if isinstance(node, int | float) and not isinstance(node, bool) else set()


def unsourced_numbers(path: Path) -> list[str]:
    """Numbers in a page's prose, integers included, that neither params.yaml holds nor the page shows with their
    source: in a generated section, a figure, a quote, or a command."""
    text = path.read_text()
    sourced = param_values(yaml.safe_load((REPO / "params.yaml").read_text()))
    for pattern in (docs.GENERATED, docs.FIGURE, QUOTE, re.compile(r"```.*?```", re.S), re.compile(r"`[^`]*`")):
        for match in pattern.finditer(text):
            sourced |= {
                number.replace(",", "") for number in re.findall(r"\d+(?:\.\d+)?", match[0].replace(",000", "000"))
            }
    return [number for number in NUMBER.findall(NAMED.sub(" ", prose(text))) if number.replace(",", "") not in sourced]


@pytest.mark.parametrize("page", PAGES)
def test_each_page_shows_what_the_stored_results_render(page: str):
    assert docs.differences(PAGES[page]) == [], "run `python -m bench.docs` (never edit a figure by hand)"


def test_each_picture_is_what_its_stored_result_draws():
    assert docs.stale_images() == [], "run `python -m bench.docs`"


@pytest.mark.parametrize("result", sorted(path.name for path in RESULTS.glob("*.json")))
def test_each_stored_result_names_its_command_code_date_and_machine(result: str):
    stamp = json.loads((RESULTS / result).read_text())["stamp"]
    assert {*docs.STAMP_KEYS, "command"} <= stamp.keys()
    assert len(stamp["commit"] or "") == 40 and stamp["command"].startswith("python -m bench --parts ")
    assert not re.search(r"(^|\s)/", stamp["command"]), "a file as seen from the repository, not this machine's path"


@pytest.mark.parametrize("page", PAGES)
def test_prose_holds_no_figure_without_a_stored_source(page: str):
    assert unsourced_figures(PAGES[page]) == [], "generate it, or mark a figure from elsewhere as a quote"
    assert unsourced_numbers(PAGES[page]) == [], "a number in prose: a param's, shown with its command, or a quote"


def test_the_pages_stay_short():
    counts = {page: words(path.read_text()) for page, path in PAGES.items()}
    assert counts["README.md"] <= 700, counts
    assert sum(counts.values()) <= 3600, counts


def test_a_figure_edited_by_hand_and_a_figure_in_prose_are_caught(tmp_path: Path):
    """The checks above can fail: a figure typed over a rendered one, a figure written into a sentence."""
    page = tmp_path / "page.md"
    page.write_text("Held out: <!-- figure final_step_accuracy -->0.1234<!-- /figure -->.\n")
    assert docs.differences(page) == ["final_step_accuracy"]
    page.write_text(docs.rendered(page.read_text()))
    assert docs.differences(page) == []
    page.write_text("A clean run took 24.6 s, 11.7x faster; 99/100 held, 98 % of them. `0.001` is a setting.\n")
    assert unsourced_figures(page) == ["24.6 s", "11.7x", "99/100", "98 %"]
    page.write_text("A queued task waits 10 minutes, 3 times.\n")  # a unit written out
    assert unsourced_figures(page) == ["10 minutes", "3 times"]
    page.write_text("The program says it trains in <!-- quote -->under 2 minutes<!-- /quote -->; seeds 0-99.\n")
    assert unsourced_figures(page) == []
    page.write_text("The defaults train on 200,000 sequences of 50 bits, 100,000 `data.count` says.\n")
    assert unsourced_numbers(page) == ["200,000"]


def test_words_are_what_a_reader_reads():
    """Not a table's rules and bars, nor the markers a reader never sees, nor what a generated section holds."""
    assert words("| a | 2.5 s |\n| --- | --- |\n<!-- figure x -->1<!-- /figure -->\nThe end, 1 / 2.\n") == 8
    assert words("Before.\n<!-- generated speed -->\n| a | 2.5 s |\n<!-- end -->\nAfter.\n") == 2


def test_each_empty_section_is_rendered_in_its_own_place(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("<!-- generated seeds -->\n<!-- end -->\nBetween.\n<!-- generated scale -->\n<!-- end -->\n")
    assert docs.differences(page) == ["seeds", "scale"]
    text = docs.rendered(page.read_text())
    seeds, between, scale = text.index("--parts seeds"), text.index("Between."), text.index("--parts scale")
    assert seeds < between < scale


def test_the_readme_picture_shows_a_flip_flop_as_it_says():
    """The data the README's picture is drawn from (its spec, in git beside it): every step of odd parity so far has
    its hidden state on one side of every step of even parity (which side is a seed's)."""
    spec = json.loads((REPO / "docs/images/one_held_out_sequence_step_by_step.json").read_text())
    steps = {row["step"]: row for row in spec["data"]["values"]}
    odd, even = ([float(row["hidden_state"]) for row in steps.values() if row["parity"] == parity] for parity in "10")
    assert odd and even and (max(odd) < min(even) or max(even) < min(odd)), (odd, even)


def test_every_reason_in_the_mutation_list_names_a_mutant_that_survived():
    """devkit/mutation.toml says why survivors are equivalent: a reason for a mutant that no run left alive is stale."""
    survivors = {
        mutant["mutant"]
        for mutants in docs.stored("mutation")["modules"].values()
        for mutant in mutants
        if not mutant["killed"]
    }
    assert set(mutation.equivalent()) <= survivors


@pytest.mark.parametrize("spec", sorted(path.name for path in (REPO / "docs/images").glob("*.json")))
def test_each_picture_draws_the_data_beside_it(spec: str):
    """A picture of `python -m tools.pictures` is its spec, with the data in git beside it, drawn: no other data."""
    import vl_convert

    path = REPO / "docs/images" / spec
    drawn = vl_convert.vegalite_to_svg(json.loads(path.read_text()))
    assert same_picture(path.with_suffix(".svg").read_text(), drawn)


def same_picture(one: str, other: str) -> bool:
    """Two SVGs alike but for the numbers of their clip paths, which count the charts drawn before in a process."""

    def numbered(svg: str) -> str:
        order = {}
        return re.sub(r"clip\d+", lambda match: f"clip-{order.setdefault(match[0], len(order))}", svg)

    return numbered(one) == numbered(other)


def test_the_length_picture_draws_the_committed_runs_scores():
    spec = json.loads((REPO / "docs/images/held_out_accuracy_by_test_length.json").read_text())
    drawn = {(row["length"], row["field"]): float(row[row["field"]]) for row in spec["data"]["values"]}
    by_length = json.loads((REPO / "metrics/evaluate.json").read_text())["by_length"]
    assert drawn == {(length, field): scores[field] for length, scores in by_length.items() for field in scores}


def test_every_stored_result_has_its_section_on_a_page():
    """A generated section deleted from a page leaves its stored result unshown: caught here."""
    shown = {
        match["name"].split(".")[0] for path in PAGES.values() for match in docs.GENERATED.finditer(path.read_text())
    }
    assert shown == {path.stem for path in RESULTS.glob("*.json")}
