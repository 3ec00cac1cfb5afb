"""Training numerics for K members at once: backpropagation through time of the project's loss, then Keras' Adam.
The forward steps are forward.py's, so what training optimises is what validation and `evaluate` score.

The loss of a step: each softmax slot's sigmoid cross-entropy of its own logit (Keras' `binary_crossentropy` of a
softmax output), times the step's loss factor (0 on padding and on steps `targets` does not supervise), summed over
(row, step) and divided by rows x steps, as Keras reduces it with sample weights.
"""

from functools import cache, partial

import numba
import numpy as np

from parity_lstm.model import Layout
from parity_lstm.numerics.compiled import kernel
from parity_lstm.numerics.forward import (
    GRU,
    LANES,
    LSTM,
    ONE,
    ZERO,
    gru_candidate,
    gru_gate,
    inline,
    input_part,
    logits,
    lstm_step,
    read_only,
    recurrent_part,
    sigmoid,
    simple_rnn_step,
    start_chunk,
    step_bits,
)

# Keras' Adam defaults, which the reference experiment trains with.
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7
# 1 / (2n + 1) for atanh's series, which gives the loss's logarithm (the loss value is only logged).
S3, S5, S7, S9, S11, S13, S15 = (np.float32(1 / n) for n in (3, 5, 7, 9, 11, 13, 15))


@inline
def softplus(z, sigmoid_z):
    """log(1 + e^z), given sigmoid(z): max(z, 0) - log(s), s = sigmoid(|z|) in [0.5, 1], whose logarithm is
    -2 atanh(r), r = (1 - s) / (1 + s) in [0, 1/3], a fast series; float32 to a few 1e-8."""
    s = max(sigmoid_z, ONE - sigmoid_z)
    r = (ONE - s) / (ONE + s)
    r2 = r * r
    atanh = r * (ONE + r2 * (S3 + r2 * (S5 + r2 * (S7 + r2 * (S9 + r2 * (S11 + r2 * (S13 + r2 * S15)))))))
    return max(z, ZERO) + (atanh + atanh)


@inline
def copy_rows(source, first, target, first_target, count):
    """Rows first.. first + count of source into rows first_target.. of target, lane by lane."""
    for r in range(count):
        for j in range(LANES):
            target[first_target + r, j] = source[first + r, j]


@inline
def step_inputs(bits, parity, loss_factors, rows_of, t, lane, first):
    """Step t of every lane into lane rows first.. first + 2, as float32: its bit (PAD past the batch's end), target
    parity and loss factor (0 past the end)."""
    step_bits(bits, rows_of, t, lane[first])
    for j in range(LANES):
        row = rows_of[j]
        lane[first + 1, j] = ONE if row >= 0 and parity[row, t] == 1 else ZERO
        lane[first + 2, j] = loss_factors[row, t] if row >= 0 else ZERO


@cache
def gradient_kernel(layout: Layout):
    """The training kernel for members of this layout, built as `forward_kernel` is."""
    spec = units, gates, bias_rows = layout.units, layout.spec.gates, layout.spec.bias_rows
    kernel_x, recurrent, bias, dense, dense_bias, size = layout.offsets
    width = gates * units
    kernel_not_x = kernel_x + width
    # A step's rows, seq[t + 1] for step t (seq[0]: the zero state before the first step): its bit, target, loss
    # factor; the cell's own (an LSTM's gates i, f, c, o, tanh(c), c; a GRU's z, r, candidate and the candidate's
    # recurrent part); h; dloss/dh from the output. The state a step hands on: h, and an LSTM's c just before it.
    CODE, TARGET, FACTOR, OWN = 0, 1, 2, 3
    TANH_C, C = OWN + 4 * units, OWN + 5 * units  # an LSTM's
    H = OWN + (6 * units if gates == LSTM else 4 * units if gates == GRU else 0)
    DH_OUT = H + units
    STEP = DH_OUT + units
    STATE = C if gates == LSTM else H
    # A chunk's lane buffer, its rows: the weights, their gradient; h @ recurrent kernel going forward, dloss by
    # each gate row's input part (x @ kernel + bias) going back, and by its recurrent part, DR (a GRU's differ); the
    # logits; dloss by h and (an LSTM's) by c from the step after, a GRU's dloss by h along z * h; the loss; then the
    # rows of the step at hand, NOW, and of the step before, BEFORE. The kernel computes in this one buffer at rows
    # that are constants, so LLVM vectorises each lane loop with no check at run time; seq only stores steps.
    GRADIENT = size
    DZ = 2 * size
    DR = DZ + width if gates == GRU else DZ
    OUT = DZ + 2 * width
    DH_NEXT = OUT + 2
    DC_NEXT = DH_NEXT + units
    DIRECT = DC_NEXT + units
    LOSS = DIRECT + units
    NOW = LOSS + 1
    BEFORE = NOW + STEP
    # The four values a cell's step keeps a unit, in rows NOW..: an LSTM's gates i, f, c, o; a GRU's z, r, candidate
    # and the candidate's recurrent part.
    KEPT_I, KEPT_F, KEPT_G, KEPT_O = (NOW + OWN + n * units for n in range(4))

    @partial(kernel, variant=f"{layout.cell}{units}")
    def chunk_gradient(members, chunk, batch_bits, batch_parity, batch_factors, scale, lane_gradient, lane_loss):
        """One chunk of a batch's lanes, as batches_kernel calls it. Its buffers are its own, so LLVM knows they
        overlap nothing and vectorises the lane loops."""
        rows, steps = batch_bits.shape
        lane, rows_of = np.empty((BEFORE + STEP, LANES), np.float32), np.empty(LANES, np.int64)
        seq = np.empty((steps + 1, STEP, LANES), np.float32)
        seq[0] = ZERO  # the state before step 0; the later steps are written before they are read
        first_lane, n = chunk * LANES, start_chunk(members, chunk, rows, rows_of, lane)
        lane[GRADIENT:DZ], lane[LOSS], lane[BEFORE:] = ZERO, ZERO, ZERO
        for t in range(steps):
            step_inputs(batch_bits, batch_parity, batch_factors, rows_of, t, lane, NOW + CODE)
            recurrent_part(lane, spec, BEFORE + H, DZ)
            for u in range(units):
                for j in range(LANES):
                    bit = lane[NOW + CODE, j]
                    # The cells' steps written out here, every row a constant of the kernel: through a helper
                    # taking its rows as a tuple, LLVM left this loop scalar.
                    if gates == LSTM:
                        i, f, g, o, c, tanh_c = lstm_step(lane, spec, u, j, bit, DZ, lane[BEFORE + C + u, j])
                        lane[KEPT_I + u, j], lane[KEPT_F + u, j] = i, f
                        lane[KEPT_G + u, j], lane[KEPT_O + u, j] = g, o
                        lane[NOW + TANH_C + u, j], lane[NOW + C + u, j] = tanh_c, c
                        lane[NOW + H + u, j] = o * tanh_c
                    elif gates == GRU:  # in two passes, as forward.py's: the gates, then the candidate
                        lane[KEPT_I + u, j] = gru_gate(lane, spec, u, j, bit, DZ)
                        lane[KEPT_F + u, j] = gru_gate(lane, spec, units + u, j, bit, DZ)
                    else:
                        lane[NOW + H + u, j] = simple_rnn_step(lane, spec, u, j, bit, DZ)
                if gates == GRU:
                    for j in range(LANES):
                        z, r = lane[KEPT_I + u, j], lane[KEPT_F + u, j]
                        candidate, recurrent_h = gru_candidate(lane, spec, u, j, lane[NOW + CODE, j], DZ, r)
                        lane[KEPT_G + u, j], lane[KEPT_O + u, j] = candidate, recurrent_h
                        lane[NOW + H + u, j] = z * lane[BEFORE + H + u, j] + (ONE - z) * candidate
            logits(lane, spec, NOW + H, OUT)
            for j in range(LANES):
                y, factor, out0, out1 = (
                    lane[NOW + TARGET, j],
                    lane[NOW + FACTOR, j],
                    lane[OUT, j],
                    lane[OUT + 1, j],
                )
                s0, s1 = sigmoid(out0), sigmoid(out1)
                dl0, dl1 = scale * factor * (s0 - y), scale * factor * (s1 - (ONE - y))
                lane[LOSS, j] += factor * (softplus(out0, s0) - out0 * y + softplus(out1, s1) - out1 * (ONE - y))
                lane[OUT, j], lane[OUT + 1, j] = dl0, dl1
                lane[GRADIENT + dense_bias, j] += dl0
                lane[GRADIENT + dense_bias + 1, j] += dl1
            for u in range(units):
                for j in range(LANES):
                    h, dl0, dl1 = lane[NOW + H + u, j], lane[OUT, j], lane[OUT + 1, j]
                    lane[GRADIENT + dense + 2 * u, j] += dl0 * h
                    lane[GRADIENT + dense + 2 * u + 1, j] += dl1 * h
                    lane[NOW + DH_OUT + u, j] = dl0 * lane[dense + 2 * u, j] + dl1 * lane[dense + 2 * u + 1, j]
            copy_rows(lane, NOW, seq[t + 1], 0, STEP)
            copy_rows(lane, NOW + STATE, lane, BEFORE + STATE, STEP - STATE)
        lane[DH_NEXT:LOSS] = ZERO
        for t in range(steps - 1, -1, -1):  # backpropagation through time
            copy_rows(seq[t + 1], 0, lane, NOW, STEP)
            copy_rows(seq[t], STATE, lane, BEFORE + STATE, STEP - STATE)
            for u in range(units):
                for j in range(LANES):
                    dh = lane[NOW + DH_OUT + u, j] + lane[DH_NEXT + u, j]
                    if gates == LSTM:
                        i, f, g, o, tanh_c = (
                            lane[KEPT_I + u, j],
                            lane[KEPT_F + u, j],
                            lane[KEPT_G + u, j],
                            lane[KEPT_O + u, j],
                            lane[NOW + TANH_C + u, j],
                        )
                        dc = lane[DC_NEXT + u, j] + dh * o * (ONE - tanh_c * tanh_c)
                        lane[DC_NEXT + u, j] = dc * f
                        lane[DZ + u, j] = dc * g * i * (ONE - i)
                        lane[DZ + units + u, j] = dc * lane[BEFORE + C + u, j] * f * (ONE - f)
                        lane[DZ + 2 * units + u, j] = dc * i * (ONE - g * g)
                        lane[DZ + 3 * units + u, j] = dh * tanh_c * o * (ONE - o)
                    elif gates == GRU:
                        z, r, candidate, recurrent_h = (
                            lane[KEPT_I + u, j],
                            lane[KEPT_F + u, j],
                            lane[KEPT_G + u, j],
                            lane[KEPT_O + u, j],
                        )
                        d_candidate = dh * (ONE - z) * (ONE - candidate * candidate)
                        d_update = dh * (lane[BEFORE + H + u, j] - candidate) * z * (ONE - z)
                        d_reset = d_candidate * recurrent_h * r * (ONE - r)
                        lane[DIRECT + u, j] = dh * z
                        lane[DZ + u, j], lane[DZ + units + u, j] = d_update, d_reset
                        lane[DZ + 2 * units + u, j] = d_candidate
                        lane[DR + u, j], lane[DR + units + u, j] = d_update, d_reset
                        lane[DR + 2 * units + u, j] = d_candidate * r
                    else:
                        lane[DZ + u, j] = dh * (ONE - lane[NOW + H + u, j] * lane[NOW + H + u, j])
            for q in range(width):
                for j in range(LANES):
                    dz, bit = lane[DZ + q, j], lane[NOW + CODE, j]
                    lane[GRADIENT + kernel_x + q, j] += input_part(bit, dz, ZERO)
                    lane[GRADIENT + kernel_not_x + q, j] += input_part(bit, ZERO, dz)
                    lane[GRADIENT + bias + q, j] += dz
                    if bias_rows == 2:  # a GRU's recurrent bias
                        lane[GRADIENT + bias + width + q, j] += lane[DR + q, j]
                for v in range(units):
                    for j in range(LANES):
                        lane[GRADIENT + recurrent + v * width + q, j] += lane[DR + q, j] * lane[BEFORE + H + v, j]
            for v in range(units):
                for j in range(LANES):
                    lane[DH_NEXT + v, j] = lane[recurrent + v * width, j] * lane[DR, j]
                for q in range(1, width):
                    for j in range(LANES):
                        lane[DH_NEXT + v, j] += lane[recurrent + v * width + q, j] * lane[DR + q, j]
                if gates == GRU:
                    for j in range(LANES):
                        lane[DH_NEXT + v, j] += lane[DIRECT + v, j]
        for j in range(n):
            lane_gradient[first_lane + j] = lane[GRADIENT:DZ, j]
            lane_loss[first_lane + j] = lane[LOSS, j]

    return batches_kernel(chunk_gradient)


@cache
def batches_kernel(chunk_gradient):
    """The training kernel around `chunk_gradient`, which computes one chunk of a batch's lanes:
    chunk_gradient(members, chunk, batch_bits, batch_parity, batch_factors, scale, lane_gradient, lane_loss) writes
    each lane's gradient of its loss (times `scale`) into lane_gradient[g] and its loss into lane_loss[g], lane g
    being member g // rows, row g % rows of the batch."""

    @partial(kernel, parallel=True, variant=chunk_gradient.py_func.__name__)
    def gradient_chunks(
        members, moment_1, moment_2, alphas, bits, parity, loss_factors, batches, sizes, gradient, loss
    ):  # fmt: skip
        """Batch after batch, batch b being rows batches[b, :sizes[b]] of bits, parity and loss_factors: its chunks of
        lanes shared by numba's threads (chunk_gradient); then each member's sums over its lanes into gradient
        (members, size) and loss[b], in one fixed order; then, given `alphas` (one a batch), Adam's step (its moments
        in moment_1, moment_2). Threads only share lanes, whose arithmetic does not depend on the thread: the same bits
        with any number of them. Only this small loop is numba's parallel code, which compiles slowly."""
        count, size = members.shape
        steps = bits.shape[1]
        lane_gradient = np.empty((batches.shape[1] * count, size), np.float32)
        lane_loss = np.empty(batches.shape[1] * count, np.float32)
        for b in range(len(sizes)):
            picked = batches[b, : sizes[b]]
            batch_bits, batch_parity, batch_factors = bits[picked], parity[picked], loss_factors[picked]
            rows, lanes = len(picked), len(picked) * count
            scale = np.float32(0.5 / (rows * steps))  # the two slots' mean, then Keras' "sum over batch size"
            for chunk in numba.prange((lanes + LANES - 1) // LANES):
                # int64, as typing has it: in the threads' code, compiled apart, prange's index is a uint64.
                at = np.int64(chunk)
                chunk_gradient(members, at, batch_bits, batch_parity, batch_factors, scale, lane_gradient, lane_loss)
            member_sums(lane_gradient[:lanes], lane_loss[:lanes], np.float64(scale), gradient, loss[b])
            if len(alphas):
                adam_update(members, gradient, moment_1, moment_2, alphas[b])

    return gradient_chunks


@kernel
def member_sums(lane_gradient, lane_loss, scale, gradient, loss):
    """Each member's gradient and loss: the sums over its lanes, row after row, in one fixed order."""
    count = gradient.shape[0]
    rows = lane_gradient.shape[0] // count
    gradient[:] = ZERO
    loss[:] = 0.0
    for k in range(count):
        for row in range(rows):
            gradient[k] += lane_gradient[k * rows + row]
            loss[k] += lane_loss[k * rows + row]
    loss *= scale


@kernel
def adam_update(members, gradient, m, v, alpha):
    """Keras 3's Adam step, in its order of operations, in place."""
    for k in range(members.shape[0]):
        for p in range(members.shape[1]):
            g = gradient[k, p]
            m[k, p] += (g - m[k, p]) * np.float32(1 - BETA_1)
            v[k, p] += (g * g - v[k, p]) * np.float32(1 - BETA_2)
            members[k, p] -= m[k, p] * alpha / (np.sqrt(v[k, p]) + np.float32(EPSILON))


def gradients(
    members: np.ndarray, bits: np.ndarray, parity: np.ndarray, loss_factors: np.ndarray, layout: Layout
) -> tuple[np.ndarray, np.ndarray]:
    """Each member's gradient (members, size) and loss (members,) on one batch, with no Adam step."""
    # Writable, as where the kernel steps Adam on them: one compiled version serves both (here it only reads them).
    members = np.require(members, np.float32, ["C", "W"])
    no_moments, no_alphas = np.empty((0, 0), np.float32), np.empty(0, np.float32)
    gradient, loss = np.empty(members.shape, np.float32), np.empty((1, len(members)))
    every_row = np.arange(len(bits))[None]
    gradient_kernel(layout)(
        members, no_moments, no_moments, no_alphas, read_only(bits, np.uint8), read_only(parity, np.uint8),
        read_only(loss_factors, np.float32), every_row, np.array([len(bits)]), gradient, loss,
    )  # fmt: skip
    return gradient, loss[0]


class Adam:
    """Keras 3's Adam with its defaults, on a population's flat weights, in place."""

    def __init__(self, members: np.ndarray, learning_rate: float):
        self.members, self.learning_rate = members, learning_rate
        self.m, self.v = np.zeros_like(members), np.zeros_like(members)
        self.beta_1_power = self.beta_2_power = 1.0  # products, not pow(): the same bits on every machine

    def next_alpha(self) -> np.float32:
        """The next step's learning rate, bias-corrected."""
        self.beta_1_power *= BETA_1
        self.beta_2_power *= BETA_2
        return np.float32(self.learning_rate * (1 - self.beta_2_power) ** 0.5 / (1 - self.beta_1_power))

    def apply(self, gradient: np.ndarray) -> None:
        adam_update(self.members, gradient, self.m, self.v, self.next_alpha())


def train_batches(adam: Adam, arrays: tuple[np.ndarray, ...], batches: list[np.ndarray], layout: Layout) -> np.ndarray:
    """Adam's steps on `batches` in turn, in one kernel call, each the rows of `arrays` (bits, parity, loss factors)
    it gathers: each member's loss on each batch, (batches, members)."""
    return step_batches(gradient_kernel(layout), adam, arrays, batches)


def step_batches(gradient_chunks, adam: Adam, arrays: tuple[np.ndarray, ...], batches: list[np.ndarray]) -> np.ndarray:
    """train_batches with a kernel of batches_kernel's."""
    bits, parity, loss_factors = arrays
    sizes = np.array([len(batch) for batch in batches])
    table = np.zeros((len(batches), sizes.max()), np.int64)
    for row, batch in zip(table, batches, strict=True):
        row[: len(batch)] = batch
    alphas = np.array([adam.next_alpha() for _ in batches], np.float32)
    loss = np.empty((len(batches), len(adam.members)))
    gradient_chunks(
        adam.members, adam.m, adam.v, alphas, read_only(bits, np.uint8), read_only(parity, np.uint8),
        read_only(loss_factors, np.float32), table, sizes, np.empty(adam.members.shape, np.float32), loss,
    )  # fmt: skip
    return loss


def compile_all(layout: Layout) -> None:
    """Compile (or load) the training kernel of `layout`, as training calls it."""
    members, bits, factors = (
        np.zeros((1, layout.size), np.float32),
        np.zeros((1, 1), np.uint8),
        np.ones((1, 1), np.float32),
    )
    train_batches(Adam(members, 0.1), (bits, bits, factors), [np.zeros(1, np.int64)], layout)
