"""K independent copies of the model (parity_lstm.model): a recurrent cell -> Dense(2, softmax), as one Keras layer.

inputs   (batch, steps, 2)              the bits, pair-encoded, shared by every member
outputs  (batch, steps, members, 2)     member k's two Dense logits at every step: their softmax is the output
                                        of its model alone

Trained with `population_loss`, the sum of the members' losses, each member's gradient (and so its Adam step,
which is elementwise) is the one it would get alone. Written with `keras.ops` and Keras' own RNN loop, no
TensorFlow op, so that it can run on any Keras backend (tested on TensorFlow only).
A 1-unit member is elementwise work: the recurrent and output products are broadcast multiplies, not K tiny
matrix products.
"""

import keras
import numpy as np
from keras import ops

from parity_lstm.model import Layout


@keras.saving.register_keras_serializable(package="parity_lstm")
class PopulationCell(keras.layers.Layer):
    """One step of every member, as Keras' LSTMCell, GRUCell (reset_after) or SimpleRNNCell computes it, from input
    gates (x @ kernel + bias) computed beforehand.

    Gate-major layout: the gate rows of all members are contiguous blocks of members * units, so splitting them is
    slicing. The state is flat, (batch, members * units), so Keras' own RNN loop runs it.
    """

    def __init__(self, members: int, units: int, cell: str, **kwargs):
        super().__init__(**kwargs)
        self.members, self.units, self.cell = members, units, cell
        self.gates = Layout(units, cell).spec.gates
        self.state_size = [members * units] * (2 if cell == "lstm" else 1)
        self.output_size = members * units

    def build(self, input_shape) -> None:
        # [gate, member, from unit, to unit]; zeros here, `Population.set_members` sets the members' own weights.
        shape = (self.gates, self.members, self.units, self.units)
        self.recurrent_kernel = self.add_weight(shape=shape, initializer="zeros", name="recurrent_kernel")
        if self.cell == "gru":  # the recurrent bias, [gate, member, unit]
            shape = (self.gates, self.members, self.units)
            self.recurrent_bias = self.add_weight(shape=shape, initializer="zeros", name="recurrent_bias")

    def recurrent(self, hidden, input_gates):
        """Each member's hidden state times its own recurrent kernel: a broadcast product summed over `from unit`."""
        by_member = ops.reshape(hidden, (-1, 1, self.members, self.units, 1))
        return ops.reshape(ops.sum(by_member * self.recurrent_kernel, axis=-2), ops.shape(input_gates))

    def call(self, input_gates, states):
        hidden = states[0]
        inner = self.recurrent(hidden, input_gates)
        if self.cell == "lstm":
            i, f, c, o = ops.split(input_gates + inner, 4, axis=-1)
            cell = ops.sigmoid(f) * states[1] + ops.sigmoid(i) * ops.tanh(c)
            hidden = ops.sigmoid(o) * ops.tanh(cell)
            return hidden, [hidden, cell]
        if self.cell == "gru":
            inner = inner + ops.reshape(self.recurrent_bias, (-1,))
            x_z, x_r, x_h = ops.split(input_gates, 3, axis=-1)
            inner_z, inner_r, inner_h = ops.split(inner, 3, axis=-1)
            z, r = ops.sigmoid(x_z + inner_z), ops.sigmoid(x_r + inner_r)
            hidden = z * hidden + (1 - z) * ops.tanh(x_h + r * inner_h)
            return hidden, [hidden]
        hidden = ops.tanh(input_gates + inner)
        return hidden, [hidden]

    def get_config(self) -> dict:
        return super().get_config() | {"members": self.members, "units": self.units, "cell": self.cell}


@keras.saving.register_keras_serializable(package="parity_lstm")
class Population(keras.layers.Layer):
    def __init__(self, members: int, units: int, cell: str = "lstm", **kwargs):
        super().__init__(**kwargs)
        self.members, self.units, self.cell = members, units, cell
        self.layout = Layout(units, cell)
        self.population_cell = PopulationCell(members, units, cell)
        self.sequences = keras.layers.RNN(self.population_cell, return_sequences=True)

    def build(self, input_shape) -> None:
        k, u, gates = self.members, self.units, self.layout.spec.gates
        self.sequences.build((*input_shape[:-1], gates * k * u))
        # Gate-major like the cell's; zeros here, `set_members` sets the members' own weights.
        self.kernel = self.add_weight(shape=(2, gates, k, u), initializer="zeros", name="kernel")
        self.bias = self.add_weight(shape=(gates, k, u), initializer="zeros", name="bias")
        self.dense_kernel = self.add_weight(shape=(k, u, 2), initializer="zeros", name="dense_kernel")
        self.dense_bias = self.add_weight(shape=(k, 2), initializer="zeros", name="dense_bias")

    def set_members(self, weights: list[list[np.ndarray]]) -> None:
        """Member k takes `weights[k]`, a model's weights in `get_weights()` order."""
        u, gates = self.units, self.layout.spec.gates
        kernel, recurrent, bias, dense_kernel, dense_bias = (np.stack(each) for each in zip(*weights, strict=True))
        # Keras keeps a member's gates as one axis of gates * units; here they are [gate, member, unit].
        self.kernel.assign(kernel.reshape(-1, 2, gates, u).transpose(1, 2, 0, 3))
        self.population_cell.recurrent_kernel.assign(recurrent.reshape(-1, u, gates, u).transpose(2, 0, 1, 3))
        bias = bias.reshape(len(bias), -1, gates, u)  # rows: the input's bias (a GRU's second: the recurrent one)
        self.bias.assign(bias[:, 0].transpose(1, 0, 2))
        if self.cell == "gru":
            self.population_cell.recurrent_bias.assign(bias[:, 1].transpose(1, 0, 2))
        self.dense_kernel.assign(dense_kernel)
        self.dense_bias.assign(dense_bias)

    def member(self, k: int) -> list[np.ndarray]:
        """Member k's weights, in `get_weights()` order."""
        u, gates = self.units, self.layout.spec.gates
        kernel, recurrent, bias, dense_kernel, dense_bias = (
            ops.convert_to_numpy(variable)
            for variable in (
                self.kernel, self.population_cell.recurrent_kernel, self.bias, self.dense_kernel, self.dense_bias
            )
        )  # fmt: skip
        bias = bias[:, k].reshape(gates * u)
        if self.cell == "gru":
            bias = np.stack([bias, ops.convert_to_numpy(self.population_cell.recurrent_bias)[:, k].reshape(gates * u)])
        return [
            kernel[:, :, k].reshape(2, gates * u),
            recurrent[:, k].transpose(1, 0, 2).reshape(u, gates * u),
            bias,
            dense_kernel[k],
            dense_bias[k],
        ]

    def _input_gates(self, inputs):
        """x @ kernel + bias of every member at every step at once, outside the sequential loop."""
        return ops.matmul(inputs, ops.reshape(self.kernel, (2, -1))) + ops.reshape(self.bias, (-1,))

    def _logits(self, hidden):
        """Each member's Dense(2) of its hidden state: (..., members * units) -> (..., members, 2)."""
        hidden = ops.reshape(hidden, (*ops.shape(hidden)[:-1], self.members, self.units))
        return ops.sum(hidden[..., :, None] * self.dense_kernel, axis=-2) + self.dense_bias

    def call(self, inputs):
        return self._logits(self.sequences(self._input_gates(inputs)))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.members, 2)

    def get_config(self) -> dict:
        return super().get_config() | {"members": self.members, "units": self.units, "cell": self.cell}


def population_loss(y_true, logits):
    """Every member's loss against the same pair-encoded targets, summed over the members: (batch, steps). Keras
    then weighs each step and averages over the batch as it does for one model.

    A member's loss is the one Keras trains the model with on TensorFlow: `binary_crossentropy` of a softmax output
    reads the softmax's logits and scores each slot as the sigmoid of its own logit, averaged over the two slots.
    Written out here, so that it is the same on every backend."""
    y_true = ops.broadcast_to(ops.expand_dims(y_true, -2), ops.shape(logits))
    return ops.sum(ops.mean(ops.binary_crossentropy(y_true, logits, from_logits=True), axis=-1), axis=-1)
