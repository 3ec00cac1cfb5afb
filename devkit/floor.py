"""A floor for the fused engine's training step under the engine's own rules: K one-unit LSTMs, hand-fused for that
one shape, each lane's step worked out in registers, none of the general kernel's rows, copies or branches for other
cells and sizes. The rules are the engine's: no fused multiply-add and no reassociation (the kernels' compile options),
their tanh and sigmoid, each lane's gradient summed step by step, each member's over its lanes in row order, then
Keras' Adam, in the same kernel as the engine's (backprop.batches_kernel). Its bits are the engine's (tested), so
what separates their times is the general kernel's cost, not the rules'. The benchmark times it beside the engine.
"""

from functools import cache

import numpy as np

from parity_lstm.model import Layout
from parity_lstm.numerics.backprop import Adam, batches_kernel, copy_rows, softplus, step_batches, step_inputs
from parity_lstm.numerics.compiled import kernel
from parity_lstm.numerics.forward import LANES, ONE, ZERO, inline, input_part, sigmoid, start_chunk, tanh

LAYOUT = Layout(1)
X, RECURRENT, BIAS, DENSE, DENSE_BIAS, SIZE = LAYOUT.offsets  # weight rows; 1 - x's kernel: X + 4
GATE_I, GATE_F, GATE_G, GATE_O = range(4)  # an LSTM's gates, in Keras' order
# A step's rows (in seq[t + 1]; seq[0]: the zero state): its gates, bit, target, loss factor, tanh(c), c, h, dloss/dh
# from the output.
CODE, TARGET, FACTOR, TANH_C, C, H, DH_OUT, STEP = range(4, 12)
# A lane's rows after its weights: their gradient, its loss, dloss by h and by c from the step after, the step at hand,
# c and h of the step before.
GRADIENT, LOSS, DH_NEXT, DC_NEXT, NOW = SIZE, 2 * SIZE, 2 * SIZE + 1, 2 * SIZE + 2, 2 * SIZE + 3
BEFORE_C, BEFORE_H = NOW + STEP, NOW + STEP + 1


@inline
def gate(w, q, j, bit, h):
    """Gate row q's pre-activation in lane j, in the engine's order: x @ kernel + h @ recurrent kernel + bias."""
    return input_part(bit, w[X + q, j], w[X + 4 + q, j]) + w[RECURRENT + q, j] * h + w[BIAS + q, j]


@inline
def add_gate_gradient(w, q, j, bit, dz, h):
    """Gate row q's share of the gradient in lane j, given dloss by its pre-activation."""
    w[GRADIENT + X + q, j] += input_part(bit, dz, ZERO)
    w[GRADIENT + X + 4 + q, j] += input_part(bit, ZERO, dz)
    w[GRADIENT + BIAS + q, j] += dz
    w[GRADIENT + RECURRENT + q, j] += dz * h


@kernel
def floor_chunk(members, chunk, bits, parity, factors, scale, lane_gradient, lane_loss):
    """One chunk of a batch's lanes, as batches_kernel calls it. The loops over the lanes read and write one buffer
    at constant rows, so LLVM vectorises them with no check at run time; seq only keeps the steps."""
    rows, steps = bits.shape
    w, seq = np.empty((BEFORE_H + 1, LANES), np.float32), np.empty((steps + 1, STEP, LANES), np.float32)
    w[SIZE:], seq[0] = ZERO, ZERO
    rows_of = np.empty(LANES, np.int64)
    first_lane, n = chunk * LANES, start_chunk(members, chunk, rows, rows_of, w)
    for t in range(steps):
        step_inputs(bits, parity, factors, rows_of, t, w, NOW + CODE)
        for j in range(LANES):  # the cell
            bit, h_before = w[NOW + CODE, j], w[BEFORE_H, j]
            i, f = sigmoid(gate(w, GATE_I, j, bit, h_before)), sigmoid(gate(w, GATE_F, j, bit, h_before))
            g, o = tanh(gate(w, GATE_G, j, bit, h_before)), sigmoid(gate(w, GATE_O, j, bit, h_before))
            c = f * w[BEFORE_C, j] + i * g
            tanh_c = tanh(c)
            w[NOW + GATE_I, j], w[NOW + GATE_F, j], w[NOW + GATE_G, j], w[NOW + GATE_O, j] = i, f, g, o
            w[NOW + TANH_C, j], w[NOW + C, j], w[NOW + H, j] = tanh_c, c, o * tanh_c
        for j in range(LANES):  # the output and its loss
            y, factor, h = w[NOW + TARGET, j], w[NOW + FACTOR, j], w[NOW + H, j]
            out0, out1 = h * w[DENSE, j] + w[DENSE_BIAS, j], h * w[DENSE + 1, j] + w[DENSE_BIAS + 1, j]
            s0, s1 = sigmoid(out0), sigmoid(out1)
            dl0, dl1 = scale * factor * (s0 - y), scale * factor * (s1 - (ONE - y))
            w[LOSS, j] += factor * (softplus(out0, s0) - out0 * y + softplus(out1, s1) - out1 * (ONE - y))
            w[GRADIENT + DENSE_BIAS, j] += dl0
            w[GRADIENT + DENSE_BIAS + 1, j] += dl1
            w[GRADIENT + DENSE, j] += dl0 * h
            w[GRADIENT + DENSE + 1, j] += dl1 * h
            w[NOW + DH_OUT, j] = dl0 * w[DENSE, j] + dl1 * w[DENSE + 1, j]
            w[BEFORE_C, j], w[BEFORE_H, j] = w[NOW + C, j], h
        copy_rows(w, NOW, seq[t + 1], 0, STEP)
    for t in range(steps - 1, -1, -1):
        copy_rows(seq[t + 1], 0, w, NOW, STEP)
        copy_rows(seq[t], C, w, BEFORE_C, 2)
        for j in range(LANES):  # dloss by each gate's pre-activation, in the gate's row
            i, f, g, o = w[NOW + GATE_I, j], w[NOW + GATE_F, j], w[NOW + GATE_G, j], w[NOW + GATE_O, j]
            tanh_c = w[NOW + TANH_C, j]
            dh = w[NOW + DH_OUT, j] + w[DH_NEXT, j]
            dc = w[DC_NEXT, j] + dh * o * (ONE - tanh_c * tanh_c)
            w[DC_NEXT, j] = dc * f
            w[NOW + GATE_I, j], w[NOW + GATE_F, j] = dc * g * i * (ONE - i), dc * w[BEFORE_C, j] * f * (ONE - f)
            w[NOW + GATE_G, j], w[NOW + GATE_O, j] = dc * i * (ONE - g * g), dh * tanh_c * o * (ONE - o)
        for q in range(4):
            for j in range(LANES):
                add_gate_gradient(w, q, j, w[NOW + CODE, j], w[NOW + q, j], w[BEFORE_H, j])
        for j in range(LANES):
            dzi, dzf, dzg, dzo = w[NOW + GATE_I, j], w[NOW + GATE_F, j], w[NOW + GATE_G, j], w[NOW + GATE_O, j]
            recurrent = w[RECURRENT, j] * dzi + w[RECURRENT + 1, j] * dzf + w[RECURRENT + 2, j] * dzg
            w[DH_NEXT, j] = recurrent + w[RECURRENT + 3, j] * dzo
    for j in range(n):
        lane_gradient[first_lane + j] = w[GRADIENT:LOSS, j]
        lane_loss[first_lane + j] = w[LOSS, j]


@cache
def floor_kernel():
    return batches_kernel(floor_chunk)


def floor_train_batches(adam: Adam, arrays: tuple[np.ndarray, ...], batches: list[np.ndarray]) -> np.ndarray:
    """backprop.train_batches for one-unit LSTMs, by the floor."""
    return step_batches(floor_kernel(), adam, arrays, batches)
