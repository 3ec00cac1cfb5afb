"""What a lane's step computes on float32 scalars, in plain Python: the kernels' tanh (Eigen's float32 rational tanh,
XLA's on CPU, not libm, whose last bits may differ between machines) and the input pair's share of a gate. numba
compiles them into the kernels (forward.py); the stepwise forward pass (stepwise.py) runs them as they are, on numpy
float32 scalars, with the same bits. No numba here."""

import numpy as np

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


def tanh(z):
    z = min(max(z, -CLAMP), CLAMP)
    z2 = z * z
    p = z * (((((((A13 * z2 + A11) * z2 + A9) * z2 + A7) * z2 + A5) * z2 + A3) * z2) + A1)
    return p / (((B6 * z2 + B4) * z2 + B2) * z2 + B0)


def input_part(bit, kernel_x, kernel_not_x):
    """The input pair's share of a gate, [x, 1 - x] @ kernel: the row of x for bit 1, of 1 - x for 0, none for PAD.
    Exactly x * kernel_x + (1 - x) * kernel_not_x in float, where one of the two is 0 and the other 1."""
    return kernel_x if bit == ONE else (kernel_not_x if bit == ZERO else ZERO)
