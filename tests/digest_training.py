"""Train a population for a few Adam steps with the fused numerics and print a digest of its weights and of its
forward pass: the bytes must be the same whatever the threads, or the CPU the kernels were compiled for.

    NUMBA_NUM_THREADS=1 python -m tests.digest_training
"""

import hashlib

import numpy as np

from parity_lstm.model import Layout
from parity_lstm.numerics.backprop import Adam, gradients
from parity_lstm.numerics.forward import probability_of_one
from tests.arrays import padded_batch

MEMBERS, ROWS = 20, 128  # 2,560 lanes a batch: enough for two threads to share the work


def digest() -> str:
    layout = Layout(1)
    members = np.random.default_rng(0).normal(0, 0.5, (MEMBERS, layout.size)).astype(np.float32)
    adam = Adam(members, 0.01)
    for seed in range(3):
        adam.apply(gradients(members, *padded_batch(ROWS, 50, seed), layout)[0])
    probability = probability_of_one(members, padded_batch(1000, 60, 9)[0], layout)
    return hashlib.sha256(members.tobytes() + probability.tobytes()).hexdigest()


if __name__ == "__main__":
    print(digest())
