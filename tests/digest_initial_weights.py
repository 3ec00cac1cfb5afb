"""Print a digest of the initial weights of a few seeds and sizes: its bytes must not depend on the CPU, so the tests
run it under OPENBLAS_CORETYPE and NUMBA_CPU_NAME variants and compare it with a stored one.

    OPENBLAS_CORETYPE=Prescott python -m tests.digest_initial_weights
"""

import hashlib

from parity_lstm.model import CELLS, Layout, initial_weights

CASES = [
    (seed, Layout(units, cell), forget_bias)
    for seed in (0, 1, 2, 12345)
    for units in (1, 3, 16)
    for cell in CELLS
    for forget_bias in (1.0, 3.0)
]


def digest() -> str:
    weights = (weight for case in CASES for weight in initial_weights(*case))
    return hashlib.sha256(b"".join(weight.tobytes() for weight in weights)).hexdigest()


if __name__ == "__main__":
    print(digest())
