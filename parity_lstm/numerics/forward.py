"""The forward pass of the model (parity_lstm.model) for K members at once: what validation, `evaluate` and `predict`
score with, and the cell step that training (backprop.py) runs forward. Compiled by numba; no TensorFlow.

bits      (rows, steps) uint8, PAD in front of short sequences  ->  pairs [x, 1 - x], PAD [0, 0], as `one_hot_pairs`
members   (members, size) float32: each member's weights, a flat row (`model.Layout`)

One lane is one (row, member): a lane's step is a few dozen scalar operations, so lanes are run LANES at a time
through the whole sequence, each operation a loop over them that the compiler vectorises. Deterministic by
construction, whatever the threads or the instruction set: a lane's arithmetic does not depend on which lanes run
beside it or on which thread; sums over lanes are taken in one fixed order; no fast-math (no reassociation, no
fused multiply-add); tanh and sigmoid are explicit arithmetic (Eigen's float32 rational tanh, XLA's on CPU), not
libm, whose last bits may differ between machines.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path

import numba
import numpy as np

from parity_lstm.data.encoding import PAD
from parity_lstm.model import BIAS, DENSE_BIAS, DENSE_KERNEL, KERNEL, MODEL_FILE, RECURRENT, Layout, load_model
from parity_lstm.numerics.compiled import OPTIONS, kernel

# Lanes run together: their per-step buffers stay in the core's caches.
LANES = 64
# Fewer lanes than this a thread, and one thread runs them all: waking a second costs more than it saves.
MIN_LANES_PER_THREAD = 512

F32 = np.float32
ONE, HALF, ZERO = F32(1), F32(0.5), F32(0)
# Eigen's generic_fast_tanh_float: z * N(z^2) / D(z^2) for z clamped to +-CLAMP, where float32 tanh is +-1.
CLAMP = F32(7.90531110763549805)
A1, A3, A5, A7 = (
    F32(4.89352455891786e-03),
    F32(6.37261928875436e-04),
    F32(1.48572235717979e-05),
    F32(5.12229709037114e-08),
)
A9, A11, A13 = F32(-8.60467152213735e-11), F32(2.00018790482477e-13), F32(-2.76076847742355e-16)
B0, B2, B4, B6 = (
    F32(4.89352518554385e-03),
    F32(2.26843463243900e-03),
    F32(1.18534705686654e-04),
    F32(1.19825839466702e-06),
)

# Helpers the kernels call: numba compiles them into each kernel.
inline = numba.njit(inline="always", **OPTIONS)


@inline
def tanh(z):
    z = min(max(z, -CLAMP), CLAMP)
    z2 = z * z
    p = z * (((((((A13 * z2 + A11) * z2 + A9) * z2 + A7) * z2 + A5) * z2 + A3) * z2) + A1)
    return p / (((B6 * z2 + B4) * z2 + B2) * z2 + B0)


@inline
def sigmoid(z):
    return HALF + HALF * tanh(HALF * z)


@inline
def start_chunk(members, chunk, rows, rows_of, w):
    """A chunk's lanes: each one's row of the batch into rows_of (-1 past the end), its member's weights into w
    (size, LANES; zeros past the end); returns how many lanes are in use. Lane g is member g // rows, row g % rows:
    the divisions once a chunk, not once a step."""
    count, size = members.shape
    first_lane = chunk * LANES
    for j in range(LANES):
        g = first_lane + j
        in_use = g < rows * count
        rows_of[j] = g % rows if in_use else -1
        for p in range(size):
            w[p, j] = members[g // rows, p] if in_use else ZERO
    return min(LANES, rows * count - first_lane)


@inline
def lane_inputs(bits, rows_of, t, x):
    """Step t's input pair of every lane into x (2, LANES): [1, 0] for bit 1, [0, 1] for 0, [0, 0] for PAD."""
    for j in range(LANES):
        bit = bits[rows_of[j], t] if rows_of[j] >= 0 else PAD
        x[0, j] = ONE if bit == 1 else ZERO
        x[1, j] = ONE if bit == 0 else ZERO


@inline
def cell_step(w, offsets, units, x0, x1, h_before, c_before, z, gates, tanh_c, c, h):
    """One LSTM step of every lane, as Keras' LSTMCell: z = x @ kernel + h @ recurrent + bias, gates i, f, c, o.
    Inputs x0, x1 (LANES,); states (units, LANES); writes z (4u, LANES), gates (4u, LANES), tanh_c, c, h."""
    u4 = 4 * units
    kernel_x1, recurrent, bias = offsets[KERNEL] + u4, offsets[RECURRENT], offsets[BIAS]
    for q in range(u4):
        for j in range(LANES):
            z[q, j] = w[offsets[KERNEL] + q, j] * x0[j] + w[kernel_x1 + q, j] * x1[j]
        for u in range(units):
            for j in range(LANES):
                z[q, j] += w[recurrent + u * u4 + q, j] * h_before[u, j]
        for j in range(LANES):
            z[q, j] += w[bias + q, j]
    for u in range(units):
        for j in range(LANES):
            i, f = sigmoid(z[u, j]), sigmoid(z[units + u, j])
            g, o = tanh(z[2 * units + u, j]), sigmoid(z[3 * units + u, j])
            c[u, j] = f * c_before[u, j] + i * g
            tanh_c[u, j] = tanh(c[u, j])
            h[u, j] = o * tanh_c[u, j]
            gates[u, j], gates[units + u, j], gates[2 * units + u, j], gates[3 * units + u, j] = i, f, g, o


@inline
def logits(w, offsets, units, h, out):
    """Dense(2) of the hidden states: h @ kernel + bias into out (2, LANES)."""
    dense, dense_bias = offsets[DENSE_KERNEL], offsets[DENSE_BIAS]
    for s in range(2):
        for j in range(LANES):
            out[s, j] = ZERO
        for u in range(units):
            for j in range(LANES):
                out[s, j] += h[u, j] * w[dense + 2 * u + s, j]
        for j in range(LANES):
            out[s, j] += w[dense_bias + s, j]


@kernel
def forward_chunks(members, offsets, units, bits, first, last, final_only, probability, hidden, cell):
    """Chunks [first, last) of `bits` (rows, steps): the probability of parity 1 (softmax slot 0) after each step,
    into probability (steps or 1, lanes); the states too into hidden and cell (steps, units, lanes) unless they are
    empty. Lane g is member g // rows, row g % rows: a chunk's lanes read neighbouring rows."""
    size = members.shape[1]
    rows, steps = bits.shape
    u4 = 4 * units
    # Every buffer a row range of one array: LLVM then vectorises the lane loops without checks for overlap.
    Z = size
    GATES = Z + u4
    TANH_C = GATES + u4
    OUT = TANH_C + units
    X = OUT + 2
    STATES = X + 2  # h, c of even steps, then h, c of odd ones
    lane = np.zeros((STATES + 4 * units, LANES), np.float32)
    w, z, gates, tanh_c, x = lane[:size], lane[Z:GATES], lane[GATES:TANH_C], lane[TANH_C:OUT], lane[X : X + 2]
    keep_states = hidden.shape[0] > 0
    rows_of = np.empty(LANES, np.int64)
    for chunk in range(first, last):
        first_lane, n = chunk * LANES, start_chunk(members, chunk, rows, rows_of, w)
        lane[STATES:] = ZERO
        for t in range(steps):
            now, before = STATES + 2 * units * (t % 2), STATES + 2 * units * (1 - t % 2)
            lane_inputs(bits, rows_of, t, x)
            h_before, c_before = lane[before : before + units], lane[before + units : before + 2 * units]
            h, c = lane[now : now + units], lane[now + units : now + 2 * units]
            cell_step(w, offsets, units, x[0], x[1], h_before, c_before, z, gates, tanh_c, c, h)
            if keep_states:
                for u in range(units):
                    for j in range(n):
                        hidden[t, u, first_lane + j] = lane[now + u, j]
                        cell[t, u, first_lane + j] = lane[now + units + u, j]
            if final_only and t < steps - 1:
                continue
            logits(w, offsets, units, lane[now : now + units], lane[OUT : OUT + 2])
            row = 0 if final_only else t
            for j in range(n):  # softmax slot 0 of two logits: the sigmoid of their difference
                probability[row, first_lane + j] = sigmoid(lane[OUT, j] - lane[OUT + 1, j])


# ---- running them ---------------------------------------------------------------------------------------------


@cache
def thread_pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="kernels")


def in_chunks(run, lanes: int) -> None:
    """run(first_chunk, last_chunk) over every chunk of lanes, split between threads when there are enough lanes.
    NUMBA_NUM_THREADS sets the most threads (default: the CPUs); the results do not depend on it."""
    chunks = -(-lanes // LANES)
    threads = max(1, min(numba.config.NUMBA_NUM_THREADS, lanes // MIN_LANES_PER_THREAD))
    if threads == 1:
        return run(0, chunks)
    bounds = [chunks * n // threads for n in range(threads + 1)]
    for done in [thread_pool(threads).submit(run, *pair) for pair in pairwise(bounds)]:
        done.result()


def read_only(array: np.ndarray, dtype) -> np.ndarray:
    """`array` as the kernels take their inputs: C-contiguous and read-only, whatever the caller had (a file's
    memory map, a copy): one compiled version of each kernel serves every caller."""
    array = np.ascontiguousarray(array, dtype)
    if array.flags.writeable:
        array = array.view()
        array.flags.writeable = False
    return array


def probability_of_one(members: np.ndarray, bits: np.ndarray, final_only: bool = False) -> np.ndarray:
    """Every member's probability of parity 1 after each step (or the last only): (steps or 1, rows, members)."""
    members, bits = read_only(members, np.float32), read_only(bits, np.uint8)
    count, (rows, steps) = len(members), bits.shape
    layout = Layout.of(members.shape[1])
    probability = np.empty((1 if final_only else steps, count * rows), np.float32)
    none = np.empty((0, 0, 0), np.float32)

    def run(first: int, last: int) -> None:
        forward_chunks(members, layout.offsets, layout.units, bits, first, last, final_only, probability, none, none)

    in_chunks(run, count * rows)
    return probability.reshape(-1, count, rows).transpose(0, 2, 1)


def states(weights: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One member's (a flat row) hidden and cell states after each step: each (rows, steps, units)."""
    members, bits = read_only(weights[None], np.float32), read_only(bits, np.uint8)
    rows, steps = bits.shape
    layout = Layout.of(len(weights))
    hidden, cell = np.empty((2, steps, layout.units, rows), np.float32)
    probability = np.empty((steps, rows), np.float32)

    def run(first: int, last: int) -> None:
        forward_chunks(members, layout.offsets, layout.units, bits, first, last, False, probability, hidden, cell)

    in_chunks(run, rows)
    return hidden.transpose(2, 0, 1), cell.transpose(2, 0, 1)


def predicted_odd(probability: np.ndarray) -> np.ndarray:
    """The one rule for the predicted parity: odd where the probability of 1 is above 0.5; at exactly 0.5, even."""
    return probability > 0.5


@dataclass(frozen=True)
class TrainedModel:
    """A trained model, run by this forward pass: what `evaluate` scores and `predict` answers with. No TensorFlow,
    whose import alone takes seconds; equal to Keras on TensorFlow to 1e-6 (tested)."""

    weights: np.ndarray  # a flat row (parity_lstm.model.Layout)

    def probability_of_one(self, bits: np.ndarray) -> np.ndarray:
        """The softmax's slot 0, the probability of parity 1, after each step of `bits` (count, steps) of any
        length, PAD in front of short ones: step-major, (steps, count)."""
        return probability_of_one(self.weights[None], bits)[:, :, 0]

    def states(self, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hidden and cell state after each step of `bits` (count, steps): each (count, steps, units)."""
        return states(self.weights, bits)


def load_trained_model(path: Path = MODEL_FILE) -> TrainedModel:
    """The model file's weights, ready to score; no code from the file is run."""
    weights = load_model(path)
    return TrainedModel(Layout(len(weights[1])).flatten(weights))


def compile_all() -> None:
    """Compile (or load) the forward kernel, as its callers call it."""
    probability_of_one(np.zeros((1, Layout(1).size), np.float32), np.zeros((1, 1), np.uint8))
