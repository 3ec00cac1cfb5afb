"""The forward pass of one member, a lane at a time in plain Python: the kernels' arithmetic (forward.py), operation for
operation in the same order on numpy float32 scalars, so the same bits (tested), with none of their start: no numba to
import, no kernel to load. For inputs so small that the start would cost more than the arithmetic, as `predict` of a
few strings."""

import numpy as np

from parity_lstm.model import Layout
from parity_lstm.numerics.scalar import HALF, ONE, ZERO, input_part, tanh


def sigmoid(z):
    return HALF + HALF * tanh(HALF * z)


def probability_of_one(weights: np.ndarray, bits: np.ndarray, layout: Layout) -> np.ndarray:
    """One member's (a flat row) probability of parity 1 after each step of `bits` (rows, steps), PAD in front of
    short ones: (steps, rows)."""
    kernel, recurrent, bias, dense, dense_bias = layout.unflatten(np.asarray(weights, np.float32))
    input_bias, recurrent_bias = (bias, None) if bias.ndim == 1 else bias
    units, gates = layout.units, layout.spec.gates
    rows, steps = bits.shape
    probability = np.empty((steps, rows), np.float32)

    def x_part(bit, q):  # gate row q's x @ kernel + bias (a GRU's input bias)
        return input_part(bit, kernel[0, q], kernel[1, q]) + input_bias[q]

    for row in range(rows):
        h, c = [ZERO] * units, [ZERO] * units
        for t in range(steps):
            bit = bits[row, t]
            z = []  # h @ recurrent kernel (a GRU's: + its recurrent bias)
            for q in range(gates * units):
                z.append(recurrent[0, q] * h[0])
                for v in range(1, units):
                    z[q] += recurrent[v, q] * h[v]
                if recurrent_bias is not None:
                    z[q] += recurrent_bias[q]
            if gates == 4:  # LSTM: gates i, f, c, o
                for u in range(units):
                    i, f, g, o = (
                        input_part(bit, kernel[0, q], kernel[1, q]) + z[q] + bias[q] for q in range(u, 4 * units, units)
                    )
                    c[u] = sigmoid(f) * c[u] + sigmoid(i) * tanh(g)
                    h[u] = sigmoid(o) * tanh(c[u])
            elif gates == 3:  # GRU, reset after: gates z, r, then the candidate
                update = [sigmoid(x_part(bit, u) + z[u]) for u in range(units)]
                reset = [sigmoid(x_part(bit, units + u) + z[units + u]) for u in range(units)]
                candidate = [tanh(x_part(bit, 2 * units + u) + reset[u] * z[2 * units + u]) for u in range(units)]
                h = [update[u] * h[u] + (ONE - update[u]) * candidate[u] for u in range(units)]
            else:  # simple RNN
                h = [tanh(x_part(bit, u) + z[u]) for u in range(units)]
            out = []  # Dense(2): h @ kernel + bias
            for slot in range(2):
                out.append(h[0] * dense[0, slot])
                for u in range(1, units):
                    out[slot] += h[u] * dense[u, slot]
                out[slot] += dense_bias[slot]
            probability[t, row] = sigmoid(out[0] - out[1])  # softmax slot 0: the sigmoid of the logits' difference
    return probability
