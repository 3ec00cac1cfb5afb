"""Train a population for a few Adam steps with the fused numerics and print a digest of its weights and of its
forward pass: the bytes must be the same whatever the threads, or the CPU the kernels were compiled for.

    NUMBA_NUM_THREADS=1 python -m tests.digest_training
"""

import hashlib

import numpy as np

from stages import fused
from tests.arrays import padded_batch

MEMBERS, ROWS = 20, 128  # 2,560 lanes a batch: enough for two threads to share the work


def digest() -> str:
    theta = np.random.default_rng(0).normal(0, 0.5, (MEMBERS, fused.Layout(1).size)).astype(np.float32)
    adam = fused.Adam(theta, 0.01)
    for seed in range(3):
        adam.apply(fused.gradients(theta, *padded_batch(ROWS, 50, seed))[0])
    probability = fused.probability_of_one(theta, padded_batch(1000, 60, 9)[0])
    return hashlib.sha256(theta.tobytes() + probability.tobytes()).hexdigest()


if __name__ == "__main__":
    print(digest())
