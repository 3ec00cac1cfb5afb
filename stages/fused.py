"""The numerics of the reference model, LSTM(units) -> Dense(2, softmax), for K members at once: the forward pass
that validation, `evaluate` and `predict` score with, and the fused engine's training step (backpropagation through
time of the project's loss, then Keras' Adam update). Compiled by numba; no TensorFlow.

bits      (rows, steps) uint8, PAD in front of short sequences   ->  [x, 1 - x] pairs, PAD [0, 0], as one_hot_pairs
theta     (members, size) float32: member k's weights flat, in the order and layout of Keras' `get_weights()`

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

import numba
import numpy as np

from stages.encoding import PAD

# Lanes run together: their per-step buffers stay in the core's caches.
LANES = 64
# Fewer lanes than this a thread, and one thread runs them all: waking a second costs more than it saves
# (docs/speed.md).
MIN_LANES_PER_THREAD = 512
# Keras' Adam defaults, which the reference experiment trains with.
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7

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
# 1 / (2n + 1) for atanh's series, which gives the loss's logarithm (the loss value is only logged).
S3, S5, S7, S9, S11, S13, S15 = (F32(1 / n) for n in (3, 5, 7, 9, 11, 13, 15))

inline = numba.njit(inline="always", error_model="numpy")
kernel = numba.njit(cache=True, nogil=True, error_model="numpy")  # numpy's errors: no branch per division


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
def softplus(z, sigmoid_z):
    """log(1 + e^z), given sigmoid(z): max(z, 0) - log(s), s = sigmoid(|z|) in [0.5, 1], whose logarithm is
    -2 atanh(r), r = (1 - s) / (1 + s) in [0, 1/3], a fast series; float32 to a few 1e-8."""
    s = max(sigmoid_z, ONE - sigmoid_z)
    r = (ONE - s) / (ONE + s)
    r2 = r * r
    atanh = r * (ONE + r2 * (S3 + r2 * (S5 + r2 * (S7 + r2 * (S9 + r2 * (S11 + r2 * (S13 + r2 * S15)))))))
    return max(z, ZERO) + (atanh + atanh)


@dataclass(frozen=True)
class Layout:
    """Where each of Keras' weights sits in a member's flat row: kernel (2, 4u) [x row, 1 - x row], recurrent
    kernel (u, 4u), bias (4u), Dense kernel (u, 2), Dense bias (2); gates in Keras' order i, f, c, o."""

    units: int

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        u = self.units
        return [(2, 4 * u), (u, 4 * u), (4 * u,), (u, 2), (2,)]

    @property
    def size(self) -> int:
        return sum(int(np.prod(shape)) for shape in self.shapes)


def units_of(size: int) -> int:
    """The units of a member whose flat row has `size` weights: 4u^2 + 14u + 4 = size."""
    units = round((-14 + (196 - 16 * (4 - size)) ** 0.5) / 8)
    if Layout(units).size != size:
        raise ValueError(f"{size} weights is no reference model's")
    return units


def flatten(weights: list[np.ndarray]) -> np.ndarray:
    """A reference model's `get_weights()` as one flat float32 row."""
    return np.concatenate([np.asarray(w, F32).ravel() for w in weights])


def unflatten(row: np.ndarray) -> list[np.ndarray]:
    """A flat row as a reference model's `get_weights()`."""
    shapes = Layout(units_of(len(row))).shapes
    ends = np.cumsum([int(np.prod(shape)) for shape in shapes])
    return [part.reshape(shape).copy() for part, shape in zip(np.split(row, ends[:-1]), shapes, strict=True)]


# ---- the kernels: one chunk of LANES lanes at a time; lane g is member g // rows, row g % rows ----------------


@inline
def start_chunk(theta, chunk, rows, rows_of, w):
    """A chunk's lanes: each one's row of the batch into rows_of (-1 past the end), its member's weights into w
    (size, LANES; zeros past the end); returns how many lanes are in use. Lane g is member g // rows, row g % rows:
    the divisions once a chunk, not once a step."""
    members, size = theta.shape
    first_lane = chunk * LANES
    for j in range(LANES):
        g = first_lane + j
        in_use = g < rows * members
        rows_of[j] = g % rows if in_use else -1
        for p in range(size):
            w[p, j] = theta[g // rows, p] if in_use else ZERO
    return min(LANES, rows * members - first_lane)


@inline
def cell_step(w, units, x0, x1, h_before, c_before, z, gates, tanh_c, c, h):
    """One LSTM step of every lane, as Keras' LSTMCell: z = x @ kernel + h @ recurrent + bias, gates i, f, c, o.
    Inputs x0, x1 (LANES,); states (units, LANES); writes z (4u, LANES), gates (4u, LANES), tanh_c, c, h."""
    u4 = 4 * units
    recurrent, bias = 2 * u4, 2 * u4 + units * u4
    for q in range(u4):
        for j in range(LANES):
            z[q, j] = w[q, j] * x0[j] + w[u4 + q, j] * x1[j]
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
def logits(w, units, h, out):
    """Dense(2) of the hidden states: h @ kernel + bias into out (2, LANES)."""
    dense = 8 * units + 4 * units * units + 4 * units
    for s in range(2):
        for j in range(LANES):
            out[s, j] = ZERO
        for u in range(units):
            for j in range(LANES):
                out[s, j] += h[u, j] * w[dense + 2 * u + s, j]
        for j in range(LANES):
            out[s, j] += w[dense + 2 * units + s, j]


@inline
def lane_inputs(bits, rows_of, t, x):
    """Step t's input pair of every lane into x (2, LANES): [1, 0] for bit 1, [0, 1] for 0, [0, 0] for PAD."""
    for j in range(LANES):
        bit = bits[rows_of[j], t] if rows_of[j] >= 0 else PAD
        x[0, j] = ONE if bit == 1 else ZERO
        x[1, j] = ONE if bit == 0 else ZERO


@kernel
def forward_chunks(theta, units, bits, first, last, final_only, probability, hidden, cell):
    """Chunks [first, last) of `bits` (rows, steps): the probability of parity 1 (softmax slot 0) after each step,
    into probability (steps or 1, lanes); the states too into hidden and cell (steps, units, lanes) unless they are
    empty. Lane g is member g // rows, row g % rows: a chunk's lanes read neighbouring rows."""
    size = theta.shape[1]
    rows, steps = bits.shape
    u4 = 4 * units
    # Every buffer a row range of one array: LLVM then vectorises the lane loops without checks for overlap.
    Z = size
    GATES = Z + u4
    TANH_C = GATES + u4
    OUT = TANH_C + units
    X = OUT + 2
    STATES = X + 2  # h, c of even steps, then h, c of odd ones
    lane = np.zeros((STATES + 4 * units, LANES), F32)
    w, z, gates, tanh_c, x = lane[:size], lane[Z:GATES], lane[GATES:TANH_C], lane[TANH_C:OUT], lane[X : X + 2]
    keep_states = hidden.shape[0] > 0
    rows_of = np.empty(LANES, np.int64)
    for chunk in range(first, last):
        first_lane, n = chunk * LANES, start_chunk(theta, chunk, rows, rows_of, w)
        lane[STATES:] = ZERO
        for t in range(steps):
            now, before = STATES + 2 * units * (t % 2), STATES + 2 * units * (1 - t % 2)
            lane_inputs(bits, rows_of, t, x)
            h_before, c_before = lane[before : before + units], lane[before + units : before + 2 * units]
            h, c = lane[now : now + units], lane[now + units : now + 2 * units]
            cell_step(w, units, x[0], x[1], h_before, c_before, z, gates, tanh_c, c, h)
            if keep_states:
                for u in range(units):
                    for j in range(n):
                        hidden[t, u, first_lane + j] = lane[now + u, j]
                        cell[t, u, first_lane + j] = lane[now + units + u, j]
            if final_only and t < steps - 1:
                continue
            logits(w, units, lane[now : now + units], lane[OUT : OUT + 2])
            row = 0 if final_only else t
            for j in range(n):  # softmax slot 0 of two logits: the sigmoid of their difference
                probability[row, first_lane + j] = sigmoid(lane[OUT, j] - lane[OUT + 1, j])


@kernel
def gradient_chunks(theta, units, bits, parity, weights, scale, first, last, lane_gradient, lane_loss):
    """Chunks [first, last) of a batch, (rows, steps): each lane's gradient of its weighted loss into lane_gradient
    (lanes, size), the loss into lane_loss (lanes,). The loss of a step: each softmax slot's sigmoid cross-entropy
    of its own logit (Keras' binary_crossentropy of a softmax output), times the step's weight and `scale`. Lane g
    is member g // rows, row g % rows."""
    size = theta.shape[1]
    rows, steps = bits.shape
    u4 = 4 * units
    recurrent, bias = 2 * u4, 2 * u4 + units * u4
    dense = bias + u4
    # Per lane, one array: weights, gradient, dloss/dz, logits, dloss/dlogits, dloss/dh and dloss/dc from the
    # step after, loss.
    GRADIENT = size
    Z = 2 * size
    OUT = Z + u4
    DL = OUT + 2
    DH_NEXT = DL + 2
    DC_NEXT = DH_NEXT + units
    LOSS = DC_NEXT + units
    lane = np.empty((LOSS + 1, LANES), F32)
    w, gradient = lane[:size], lane[GRADIENT:Z]
    # Per step after it, seq[t + 1]: input pair, target, weight, gates, tanh(c), c, h, dloss/dh from the output.
    X, Y, WEIGHT, GATES = 0, 2, 3, 4
    TANH_C = GATES + u4
    C, H = TANH_C + units, TANH_C + 2 * units
    DH_OUT = H + units
    seq = np.zeros((steps + 1, DH_OUT + units, LANES), F32)  # seq[0]: the zero state before the first step
    rows_of = np.empty(LANES, np.int64)
    for chunk in range(first, last):
        first_lane, n = chunk * LANES, start_chunk(theta, chunk, rows, rows_of, w)
        for t in range(steps):
            lane_inputs(bits, rows_of, t, seq[t + 1, X : X + 2])
            for j in range(LANES):
                row = rows_of[j]
                seq[t + 1, Y, j] = ONE if row >= 0 and parity[row, t] == 1 else ZERO
                seq[t + 1, WEIGHT, j] = weights[row, t] if row >= 0 else ZERO
        lane[GRADIENT:] = ZERO
        for t in range(steps):
            now, before = seq[t + 1], seq[t]
            cell_step(
                w, units, now[X], now[X + 1], before[H : H + units], before[C : C + units], lane[Z:OUT],
                now[GATES : GATES + u4], now[TANH_C : TANH_C + units], now[C : C + units], now[H : H + units],
            )  # fmt: skip
            logits(w, units, now[H : H + units], lane[OUT : OUT + 2])
            for j in range(LANES):
                y, weight, out0, out1 = now[Y, j], now[WEIGHT, j], lane[OUT, j], lane[OUT + 1, j]
                s0, s1 = sigmoid(out0), sigmoid(out1)
                dl0 = scale * weight * (s0 - y)
                dl1 = scale * weight * (s1 - (ONE - y))
                lane[DL, j], lane[DL + 1, j] = dl0, dl1
                lane[LOSS, j] += weight * (softplus(out0, s0) - out0 * y + softplus(out1, s1) - out1 * (ONE - y))
                gradient[dense + 2 * units, j] += dl0
                gradient[dense + 2 * units + 1, j] += dl1
            for u in range(units):
                for j in range(LANES):
                    h, dl0, dl1 = now[H + u, j], lane[DL, j], lane[DL + 1, j]
                    gradient[dense + 2 * u, j] += dl0 * h
                    gradient[dense + 2 * u + 1, j] += dl1 * h
                    now[DH_OUT + u, j] = dl0 * w[dense + 2 * u, j] + dl1 * w[dense + 2 * u + 1, j]
        for t in range(steps - 1, -1, -1):  # backpropagation through time; lane[Z:OUT] holds dloss/dz
            now, before = seq[t + 1], seq[t]
            for u in range(units):
                for j in range(LANES):
                    i, f = now[GATES + u, j], now[GATES + units + u, j]
                    g, o = now[GATES + 2 * units + u, j], now[GATES + 3 * units + u, j]
                    tanh_c = now[TANH_C + u, j]
                    dh = now[DH_OUT + u, j] + lane[DH_NEXT + u, j]
                    dc = lane[DC_NEXT + u, j] + dh * o * (ONE - tanh_c * tanh_c)
                    lane[Z + u, j] = dc * g * i * (ONE - i)
                    lane[Z + units + u, j] = dc * before[C + u, j] * f * (ONE - f)
                    lane[Z + 2 * units + u, j] = dc * i * (ONE - g * g)
                    lane[Z + 3 * units + u, j] = dh * tanh_c * o * (ONE - o)
                    lane[DC_NEXT + u, j] = dc * f
            for q in range(u4):
                for j in range(LANES):
                    dz = lane[Z + q, j]
                    gradient[q, j] += dz * now[X, j]
                    gradient[u4 + q, j] += dz * now[X + 1, j]
                    gradient[bias + q, j] += dz
                for u in range(units):
                    for j in range(LANES):
                        gradient[recurrent + u * u4 + q, j] += lane[Z + q, j] * before[H + u, j]
            for u in range(units):
                for j in range(LANES):
                    lane[DH_NEXT + u, j] = ZERO
                for q in range(u4):
                    for j in range(LANES):
                        lane[DH_NEXT + u, j] += w[recurrent + u * u4 + q, j] * lane[Z + q, j]
        for j in range(n):
            lane_gradient[first_lane + j] = gradient[:, j]
            lane_loss[first_lane + j] = lane[LOSS, j]


@kernel
def member_sums(lane_gradient, lane_loss, scale, gradient, loss):
    """Each member's gradient and loss: the sums over its lanes, row after row, in one fixed order."""
    members = gradient.shape[0]
    rows = lane_gradient.shape[0] // members
    gradient[:] = ZERO
    loss[:] = 0.0
    for k in range(members):
        for row in range(rows):
            gradient[k] += lane_gradient[k * rows + row]
            loss[k] += lane_loss[k * rows + row]
    loss *= scale


@kernel
def adam_update(theta, gradient, m, v, alpha):
    """Keras 3's Adam step, in its order of operations, in place."""
    for k in range(theta.shape[0]):
        for p in range(theta.shape[1]):
            g = gradient[k, p]
            m[k, p] += (g - m[k, p]) * F32(1 - BETA_1)
            v[k, p] += (g * g - v[k, p]) * F32(1 - BETA_2)
            theta[k, p] -= m[k, p] * alpha / (np.sqrt(v[k, p]) + F32(EPSILON))


# ---- running them ---------------------------------------------------------------------------------------------


@cache
def thread_pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="fused")


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


def probability_of_one(theta: np.ndarray, bits: np.ndarray, final_only: bool = False) -> np.ndarray:
    """Every member's probability of parity 1 after each step (or the last only): (steps or 1, rows, members)."""
    theta, bits = np.ascontiguousarray(theta, F32), np.ascontiguousarray(bits)
    members, (rows, steps) = len(theta), bits.shape
    probability = np.empty((1 if final_only else steps, members * rows), F32)
    none = np.empty((0, 0, 0), F32)
    units = units_of(theta.shape[1])
    in_chunks(
        lambda a, b: forward_chunks(theta, units, bits, a, b, final_only, probability, none, none), members * rows
    )
    return probability.reshape(-1, members, rows).transpose(0, 2, 1)


def states(weights: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One member's (flat `weights`) hidden and cell states after each step: each (rows, steps, units)."""
    theta, bits = np.ascontiguousarray(weights[None], F32), np.ascontiguousarray(bits)
    rows, steps = bits.shape
    units = units_of(len(weights))
    hidden, cell = np.empty((2, steps, units, rows), F32)
    probability = np.empty((steps, rows), F32)
    in_chunks(lambda a, b: forward_chunks(theta, units, bits, a, b, False, probability, hidden, cell), rows)
    return hidden.transpose(2, 0, 1), cell.transpose(2, 0, 1)


def predicted_odd(probability: np.ndarray) -> np.ndarray:
    """The one rule for the predicted parity: odd where the probability of 1 is above 0.5; at exactly 0.5, even."""
    return probability > 0.5


def gradients(
    theta: np.ndarray, bits: np.ndarray, parity: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each member's gradient (members, size) and loss (members,) on one batch, the loss as Keras reduces it with
    sample weights: the sum over (row, step) of weight x loss, over rows x steps."""
    theta = np.ascontiguousarray(theta, F32)
    bits, parity, weights = np.ascontiguousarray(bits), np.ascontiguousarray(parity), np.ascontiguousarray(weights, F32)
    (members, size), (rows, steps) = theta.shape, bits.shape
    units = units_of(size)
    scale = F32(0.5 / (rows * steps))  # the two slots' mean, then Keras' "sum over batch size"
    lane_gradient, lane_loss = np.empty((rows * members, size), F32), np.empty(rows * members, F32)
    in_chunks(
        lambda a, b: gradient_chunks(theta, units, bits, parity, weights, scale, a, b, lane_gradient, lane_loss),
        rows * members,
    )
    gradient, loss = np.empty((members, size), F32), np.empty(members)
    member_sums(lane_gradient, lane_loss, float(scale), gradient, loss)
    return gradient, loss


class Adam:
    """Keras 3's Adam with its defaults, on a population's flat weights, in place."""

    def __init__(self, theta: np.ndarray, learning_rate: float):
        self.theta, self.learning_rate = theta, learning_rate
        self.m, self.v = np.zeros_like(theta), np.zeros_like(theta)
        self.iterations = 0
        self.beta_1_power = self.beta_2_power = 1.0  # products, not pow(): the same bits on every machine

    def apply(self, gradient: np.ndarray) -> None:
        self.iterations += 1
        self.beta_1_power *= BETA_1
        self.beta_2_power *= BETA_2
        alpha = F32(self.learning_rate * (1 - self.beta_2_power) ** 0.5 / (1 - self.beta_1_power))
        adam_update(self.theta, gradient, self.m, self.v, alpha)
