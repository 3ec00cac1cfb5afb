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

from functools import cache, partial

import numba
import numpy as np

from parity_lstm.data.encoding import PAD
from parity_lstm.model import CELLS, Layout, offsets
from parity_lstm.numerics import scalar
from parity_lstm.numerics.compiled import OPTIONS, kernel
from parity_lstm.numerics.scalar import HALF, ONE, ZERO

# Lanes run together: their per-step buffers stay in the core's caches.
LANES = 64

# The cells, told apart in the kernels by their gate rows a unit.
LSTM, GRU, SIMPLE_RNN = (CELLS[name].gates for name in ("lstm", "gru", "simple_rnn"))
# Helpers the kernels call: numba compiles them into each kernel.
inline = numba.njit(inline="always", **OPTIONS)
# The layout's offsets, the very function parity_lstm.model computes them with. Each kernel is built for one number of
# units (`forward_kernel(units)`), a constant it closes over, so every offset is a constant: LLVM then sees that the
# rows of a kernel's lane buffer never overlap, and vectorises each lane loop with no check at run time.
row_offsets = inline(offsets)
tanh, input_part = inline(scalar.tanh), inline(scalar.input_part)


@inline
def sigmoid(z):
    return HALF + HALF * tanh(HALF * z)


@inline
def start_chunk(members, chunk, rows, rows_of, lane):
    """A chunk's lanes: each one's row of the batch into rows_of (-1 past the end), its member's weights into the
    first rows of lane (zeros past the end); returns how many lanes are in use. Lane g is member g // rows, row
    g % rows: the divisions once a chunk, not once a step."""
    count, size = members.shape
    first_lane = chunk * LANES
    for j in range(LANES):
        g = first_lane + j
        in_use = g < rows * count
        rows_of[j] = g % rows if in_use else -1
        for p in range(size):
            lane[p, j] = members[g // rows, p] if in_use else ZERO
    return min(LANES, rows * count - first_lane)


@inline
def step_bits(bits, rows_of, t, code):
    """Step t's bit of every lane into code (LANES,), as float32: 0, 1, or PAD past the batch's end."""
    for j in range(LANES):
        code[j] = bits[rows_of[j], t] if rows_of[j] >= 0 else PAD


@inline
def recurrent_part(lane, spec, h, z):
    """h @ recurrent kernel (a GRU's: + its recurrent bias) into lane rows z.. z + gu, the hidden states in lane rows
    h.. h + u: a pass over the lanes per weight, each vectorised. `spec` is (units, gate rows a unit, bias rows),
    constants of the kernel."""
    units, gates, bias_rows = spec
    _, recurrent, bias, _, _, _ = row_offsets(units, gates, bias_rows)
    width = gates * units
    for q in range(width):
        for j in range(LANES):
            lane[z + q, j] = lane[recurrent + q, j] * lane[h, j]
        for v in range(1, units):
            for j in range(LANES):
                lane[z + q, j] += lane[recurrent + v * width + q, j] * lane[h + v, j]
        if bias_rows == 2:
            for j in range(LANES):
                lane[z + q, j] += lane[bias + width + q, j]


@inline
def x_part(lane, spec, q, j, bit):
    """Gate row q's x @ kernel + bias (a GRU's input bias) in lane j."""
    units, gates, bias_rows = spec
    kernel_x, _, bias, _, _, _ = row_offsets(units, gates, bias_rows)
    return input_part(bit, lane[kernel_x + q, j], lane[kernel_x + gates * units + q, j]) + lane[bias + q, j]


@inline
def lstm_step(lane, spec, u, j, bit, z, c_before):
    """Unit u's LSTM step in lane j, as Keras' LSTMCell: x @ kernel + h @ recurrent kernel (in rows z..) + bias,
    gates i, f, c, o; returns the gates, the new cell state and its tanh."""
    units, gates, bias_rows = spec
    kernel_x, _, bias, _, _, _ = row_offsets(units, gates, bias_rows)
    kernel_not_x = kernel_x + 4 * units
    i, f, g, o = u, units + u, 2 * units + u, 3 * units + u
    zi = input_part(bit, lane[kernel_x + i, j], lane[kernel_not_x + i, j]) + lane[z + i, j] + lane[bias + i, j]
    zf = input_part(bit, lane[kernel_x + f, j], lane[kernel_not_x + f, j]) + lane[z + f, j] + lane[bias + f, j]
    zg = input_part(bit, lane[kernel_x + g, j], lane[kernel_not_x + g, j]) + lane[z + g, j] + lane[bias + g, j]
    zo = input_part(bit, lane[kernel_x + o, j], lane[kernel_not_x + o, j]) + lane[z + o, j] + lane[bias + o, j]
    input_gate, forget_gate, candidate, output_gate = sigmoid(zi), sigmoid(zf), tanh(zg), sigmoid(zo)
    c = forget_gate * c_before + input_gate * candidate
    return input_gate, forget_gate, candidate, output_gate, c, tanh(c)


@inline
def gru_gate(lane, spec, q, j, bit, z):
    """A GRU's gate row q (update: u, reset: units + u) in lane j, as Keras' GRUCell with reset_after: the sigmoid
    of x @ kernel + input bias, plus h @ recurrent kernel + recurrent bias (in row z + q). A GRU's step is two passes
    over the lanes, the gates, then gru_candidate: in one, LLVM leaves the loop scalar."""
    return sigmoid(x_part(lane, spec, q, j, bit) + lane[z + q, j])


@inline
def gru_candidate(lane, spec, u, j, bit, z, reset_gate):
    """Unit u's candidate state in lane j, and its recurrent part (in row z + 2u.. + u); the new state is then
    update * h + (1 - update) * candidate."""
    recurrent_h = lane[z + 2 * spec[0] + u, j]
    return tanh(x_part(lane, spec, 2 * spec[0] + u, j, bit) + reset_gate * recurrent_h), recurrent_h


@inline
def simple_rnn_step(lane, spec, u, j, bit, z):
    """Unit u's step in lane j, as Keras' SimpleRNNCell: tanh((x @ kernel + bias) + h @ recurrent kernel)."""
    return tanh(x_part(lane, spec, u, j, bit) + lane[z + u, j])


@inline
def logits(lane, spec, h, out):
    """Dense(2) of the hidden states in lane rows h.. h + u: h @ kernel + bias, into lane rows out, out + 1."""
    units, gates, bias_rows = spec
    _, _, _, dense, dense_bias, _ = row_offsets(units, gates, bias_rows)
    for slot in range(2):
        for j in range(LANES):
            lane[out + slot, j] = lane[h, j] * lane[dense + slot, j]
        for u in range(1, units):
            for j in range(LANES):
                lane[out + slot, j] += lane[h + u, j] * lane[dense + 2 * u + slot, j]
        for j in range(LANES):
            lane[out + slot, j] += lane[dense_bias + slot, j]


@cache
def forward_kernel(layout: Layout):
    """The forward kernel for members of this layout: its cell and units are constants of the kernel."""
    spec = units, gates, _ = layout.units, layout.spec.gates, layout.spec.bias_rows
    size = layout.size
    # A chunk's buffer, its rows: the weights, h @ recurrent kernel, h and c (an LSTM's) of even steps, of odd
    # ones, the logits, the step's bits.
    Z = size
    STATES = Z + gates * units
    OUT = STATES + 4 * units
    CODE = OUT + 2

    @partial(kernel, variant=f"{layout.cell}{units}")
    def forward_chunk(members, bits, chunk, final_only, probability, hidden, cells):
        """Chunk `chunk` of `bits` (rows, steps): the probability of parity 1 (softmax slot 0) after each step, into
        probability (steps or 1, lanes); the states too into hidden and cells (steps, units, lanes) unless they are
        empty (cells: an LSTM's cell state, other cells' hidden state). Lane g is member g // rows, row g % rows: a
        chunk's lanes read neighbouring rows. Its buffers are its own, so LLVM vectorises the lane loops."""
        rows, steps = bits.shape
        keep_states = hidden.shape[0] > 0
        lane = np.empty((CODE + 1, LANES), np.float32)
        rows_of = np.empty(LANES, np.int64)
        first_lane, n = chunk * LANES, start_chunk(members, chunk, rows, rows_of, lane)
        lane[STATES:OUT] = ZERO  # the state before step 0
        for t in range(steps):
            now, before = STATES + 2 * units * (t % 2), STATES + 2 * units * (1 - t % 2)  # h rows, c rows after
            step_bits(bits, rows_of, t, lane[CODE])
            recurrent_part(lane, spec, before, Z)
            for u in range(units):
                for j in range(LANES):
                    bit = lane[CODE, j]
                    if gates == LSTM:
                        c_before = lane[before + units + u, j]
                        _, _, _, o, c, tanh_c = lstm_step(lane, spec, u, j, bit, Z, c_before)
                        lane[now + units + u, j], lane[now + u, j] = c, o * tanh_c
                    elif gates == GRU:  # the gates over the recurrent parts they read, for the pass below
                        lane[Z + u, j] = gru_gate(lane, spec, u, j, bit, Z)
                        lane[Z + units + u, j] = gru_gate(lane, spec, units + u, j, bit, Z)
                    else:
                        lane[now + u, j] = simple_rnn_step(lane, spec, u, j, bit, Z)
                if gates == GRU:
                    for j in range(LANES):
                        update_gate, reset_gate = lane[Z + u, j], lane[Z + units + u, j]
                        candidate, _ = gru_candidate(lane, spec, u, j, lane[CODE, j], Z, reset_gate)
                        lane[now + u, j] = update_gate * lane[before + u, j] + (ONE - update_gate) * candidate
            if keep_states:
                cell_row = now + units if gates == LSTM else now
                for u in range(units):
                    for j in range(n):
                        hidden[t, u, first_lane + j] = lane[now + u, j]
                        cells[t, u, first_lane + j] = lane[cell_row + u, j]
            if final_only and t < steps - 1:
                continue
            logits(lane, spec, now, OUT)
            row = 0 if final_only else t
            for j in range(n):  # softmax slot 0 of two logits: the sigmoid of their difference
                probability[row, first_lane + j] = sigmoid(lane[OUT, j] - lane[OUT + 1, j])

    @partial(kernel, parallel=True, variant=f"{layout.cell}{units}")
    def forward_chunks(members, bits, final_only, probability, hidden, cells):
        """Every chunk of lanes, shared by numba's threads (forward_chunk): a lane's arithmetic does not depend on the
        thread, so neither do the bits."""
        for chunk in numba.prange((len(members) * len(bits) + LANES - 1) // LANES):
            # int64, as typing has it: in the threads' code, compiled apart, prange's index is a uint64.
            forward_chunk(members, bits, np.int64(chunk), final_only, probability, hidden, cells)

    return forward_chunks


# ---- running them ---------------------------------------------------------------------------------------------


def read_only(array: np.ndarray, dtype) -> np.ndarray:
    """`array` as the kernels take their inputs: C-contiguous and read-only, whatever the caller had (a file's
    memory map, a copy): one compiled version of each kernel serves every caller."""
    array = np.ascontiguousarray(array, dtype)
    if array.flags.writeable:
        array = array.view()
        array.flags.writeable = False
    return array


def probability_of_one(members: np.ndarray, bits: np.ndarray, layout: Layout, final_only: bool = False) -> np.ndarray:
    """Every member's probability of parity 1 after each step (or the last only): (steps or 1, rows, members)."""
    members, bits = read_only(members, np.float32), read_only(bits, np.uint8)
    count, (rows, steps) = len(members), bits.shape
    probability = np.empty((1 if final_only else steps, count * rows), np.float32)
    none = np.empty((0, 0, 0), np.float32)
    forward_kernel(layout)(members, bits, final_only, probability, none, none)
    return probability.reshape(-1, count, rows).transpose(0, 2, 1)


def states(weights: np.ndarray, bits: np.ndarray, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """One member's (a flat row) hidden states and cell states after each step, each (rows, steps, units); cells with
    no cell state of their own (GRU, simple RNN) give their hidden state for both."""
    members, bits = read_only(weights[None], np.float32), read_only(bits, np.uint8)
    rows, steps = bits.shape
    hidden, cells = np.empty((2, steps, layout.units, rows), np.float32)
    probability = np.empty((steps, rows), np.float32)
    forward_kernel(layout)(members, bits, False, probability, hidden, cells)
    return hidden.transpose(2, 0, 1), cells.transpose(2, 0, 1)


def compile_all(layout: Layout) -> None:
    """Compile (or load) the forward kernel of `layout`, as its callers call it."""
    probability_of_one(np.zeros((1, layout.size), np.float32), np.zeros((1, 1), np.uint8), layout)
