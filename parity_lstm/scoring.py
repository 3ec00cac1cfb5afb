"""Scoring members on sequences, the one way validation, `evaluate` and the studies do it: each member's final-step
accuracy (the parity of the whole sequence right) on given bits, on fresh sequences of a length, and over a range of
lengths as Delétang et al. (ICLR 2023) score (the mean over the lengths of the final-step accuracy).

Fresh sequences of a length come from their own stream, `numpy.random.default_rng([seed, length])`, drawn in chunks
that do not depend on what is scored: every member, and the selected model, sees the same sequences.
"""

from collections.abc import Iterator

import numpy as np

from parity_lstm.data.encoding import random_bits, running_parity
from parity_lstm.model import Layout
from parity_lstm.numerics.forward import probability_of_one
from parity_lstm.trained import predicted_odd

# Steps of fresh sequences drawn at once, and probabilities computed per call: they bound memory whatever the number of
# members, and for any length up to STEPS_PER_CALL (a longer one is drawn and scored a sequence at a time).
STEPS_PER_CALL = 10_000_000
PROBABILITIES_PER_CALL = 10_000_000


def member_groups(members: int, lanes_per_member: int) -> Iterator[slice]:
    """Members in groups whose probabilities, `lanes_per_member` each, fit in one call."""
    size = max(1, PROBABILITIES_PER_CALL // lanes_per_member)
    for first in range(0, members, size):
        yield slice(first, min(first + size, members))


def final_step_right(members: np.ndarray, layout: Layout, bits: np.ndarray, odd: np.ndarray) -> np.ndarray:
    """How many of the sequences `bits` (rows, steps) each member (a flat row of `members`) ends on the right parity
    (`odd`, (rows,) bool), (members,)."""
    right = np.zeros(len(members), np.int64)
    for group in member_groups(len(members), len(bits)):
        probability = probability_of_one(members[group], bits, layout, final_only=True)[0]  # (rows, members)
        right[group] = (predicted_odd(probability) == odd[:, None]).sum(axis=0)
    return right


def fresh_sequences(seed: int, length: int, count: int) -> Iterator[np.ndarray]:
    """`count` fresh sequences of `length` from the stream [seed, length], in chunks of at most STEPS_PER_CALL steps."""
    rng = np.random.default_rng([seed, length])
    chunk = max(1, STEPS_PER_CALL // length)
    for start in range(0, count, chunk):
        yield random_bits(rng, min(chunk, count - start), length)


def accuracy_at_length(
    members: np.ndarray, layout: Layout, length: int, sequences: int, seed: int, every_step: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Each member's final-step accuracy on `sequences` fresh sequences of `length`, and with `every_step` its
    sequence accuracy (every step right) too, else None."""
    final, whole = np.zeros(len(members), np.int64), np.zeros(len(members), np.int64)
    for bits in fresh_sequences(seed, length, sequences):
        parity = running_parity(bits)
        if not every_step:
            final += final_step_right(members, layout, bits, parity[:, -1] == 1)
            continue
        for group in member_groups(len(members), bits.size):
            correct = predicted_odd(probability_of_one(members[group], bits, layout)) == (parity.T == 1)[:, :, None]
            final[group] += correct[-1].sum(axis=0)
            whole[group] += correct.all(axis=0).sum(axis=0)
    return final / sequences, whole / sequences if every_step else None


def deletang_score(members: np.ndarray, layout: Layout, lengths: range, sequences: int, seed: int) -> np.ndarray:
    """Each member's score over `lengths`: the mean over them of its final-step accuracy on `sequences` fresh
    sequences of each."""
    total = np.zeros(len(members))
    for length in lengths:
        total += accuracy_at_length(members, layout, length, sequences, seed)[0]
    return total / len(lengths)


def score(
    probability_of_one: np.ndarray, parity: np.ndarray, real: np.ndarray | None = None
) -> tuple[dict, np.ndarray]:
    """Metrics and per-position accuracy of the probabilities of parity 1 (count, seq_len) against parity (count,
    seq_len), counting only the `real` steps (default: all; padding is not real)."""
    real = np.ones(parity.shape, bool) if real is None else real
    odd = parity == 1
    correct = predicted_odd(probability_of_one) == odd
    metrics = {
        "step_accuracy": float(correct[real].mean()),
        # Padding is in front, so the last step is always real.
        "final_step_accuracy": float(correct[:, -1].mean()),
        "sequence_accuracy": float((correct | ~real).all(axis=1).mean()),
        # The probability the model gives the true parity.
        "mean_final_confidence": float(np.where(odd, probability_of_one, 1 - probability_of_one)[:, -1].mean()),
    }
    # Positions that are padding in every sequence have no accuracy.
    with np.errstate(invalid="ignore"):
        by_position = (correct & real).sum(axis=0) / real.sum(axis=0)
    return metrics, by_position
