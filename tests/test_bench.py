"""The benchmark's timed parts wait for an idle machine, and refuse, saying why, when it stays busy."""

import itertools

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
