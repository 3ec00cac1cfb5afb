"""End a task's process group that runs past its time: run by parity_lstm_checkout.watched in a session of its own.

    python -m parity_lstm_watchdog PROCESS_GROUP SECONDS

Exits as soon as the group has no process left (the task ended); past SECONDS, sends SIGKILL to the group, which
even a stopped process cannot ignore. The worker's supervisor then sees its task end, reports it failed, and the
task is retried.
"""

import os
import signal
import sys
import time


def watch(group: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)  # no signal: only whether the group has a process
        except ProcessLookupError:
            return
        time.sleep(1)
    print(f"watchdog: process group {group} ran past {seconds:.0f} s: killing it", file=sys.stderr, flush=True)
    os.killpg(group, signal.SIGKILL)


if __name__ == "__main__":
    watch(int(sys.argv[1]), float(sys.argv[2]))
