"""The benchmark's timed parts wait for an idle machine, and refuse, saying why, when it stays busy."""

import itertools
from pathlib import Path

import pytest

from bench import harness


@pytest.fixture
def machine(monkeypatch):
    """Two cores whose load averages come from the list the test gives; sleeping passes 10 s at once."""
    clock = itertools.count(step=harness.IDLE_POLL_S)
    now = [0]

    def sleep(seconds):
        now[0] = next(clock) + seconds

    monkeypatch.setattr(harness.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(harness.time, "sleep", sleep)
    monkeypatch.setattr(harness.time, "monotonic", lambda: now[0])

    def loads(*values):
        sequence = iter(values)
        monkeypatch.setattr(harness.os, "getloadavg", lambda: (next(sequence), 0.0, 0.0))

    return loads


def test_a_timed_part_waits_for_the_load_to_fall(machine, capsys):
    machine(1.7, 1.2, 0.9)  # 0.5 a core on 2 cores: 1.0
    harness.wait_until_idle("speed", wait_s=600)
    waits = capsys.readouterr().out.splitlines()
    assert waits == [
        "speed: waiting for an idle machine: load average 1.70, above 1.0",
        "speed: waiting for an idle machine: load average 1.20, above 1.0",
    ]


def test_a_busy_machine_refuses_the_part_in_one_line(machine):
    machine(*[2.5] * 100)
    with pytest.raises(SystemExit) as refused:
        harness.wait_until_idle("cells", wait_s=60)
    message = str(refused.value)
    assert message.startswith("bench: cells not run: the load average stayed above 1.0 (0.5 a core) for 60 s, now 2.50")
    assert "\n" not in message


def test_a_study_run_again_with_other_workers_is_timed_and_its_tables_compared(monkeypatch):
    from bench import studies

    def run_study(name, scratch, jobs):  # two grids; one worker takes longer, and in a repo "other" its table differs
        walls = {2: [100.0, 50.0], 1: [180.0, 95.0]}[jobs]
        rows = [{"configuration": {"train.seed": 0}, "members": {"0": {"epoch": 4}}}]
        if jobs == 1 and scratch.name.endswith("other"):
            rows[0]["members"]["0"]["epoch"] = 5
        return {"stamp": {"command": "python -m bench --parts seeds"}, "jobs": jobs, "rows": rows}, walls

    def fake(name, scratch, jobs):
        result, walls = run_study(name, scratch, jobs)
        return result | {"grids": [{"command": "dvc exp run --queue -S x=1", "wall_s": wall} for wall in walls]}

    monkeypatch.setattr(studies, "run_study", fake)
    monkeypatch.setattr(studies, "table", lambda rows: "TABLE")
    result = studies.measure("seeds", Path("scratch"), [2, 1])
    assert result["compared"] == [{"jobs": 1, "grid_walls_s": [180.0, 95.0], "same_tables": True}]
    assert studies.section(result).endswith(
        "Wall time, each grid in turn, 2 queue workers: 100 s, 50 s, 150 s in all.\n"
        "With 1 queue worker: 180 s, 95 s, 275 s in all (1.83x the time), the same tables."
    )
    monkeypatch.setattr(studies, "run_study", lambda name, scratch, jobs: fake(name, scratch.with_name("other"), jobs))
    assert studies.measure("seeds", Path("scratch"), [2, 1])["compared"][0]["same_tables"] is False
