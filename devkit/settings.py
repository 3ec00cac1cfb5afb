"""Settings a test or a timed part runs under, put back after: environment variables for the processes it starts, and
the kernels' threads in this process."""

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def environment(**variables: str | None) -> Iterator[None]:
    """Processes started inside see these environment variables (None: unset); the old values come back after.
    The scratch repos' commands take this process's environment, so this is how a part varies theirs."""
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


@contextmanager
def threads(count: int):
    """The fused engine's threads at most, in this thread: `numba.set_num_threads`, which cannot exceed the
    NUMBA_NUM_THREADS the process started with (default: its CPUs)."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(count)
    try:
        yield
    finally:
        numba.set_num_threads(before)
