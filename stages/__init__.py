"""The parity-LSTM pipeline: its DVC stages and the commands around them, each run as `python -m stages.<name>`."""

import os

# TensorFlow's C++ start-up INFO lines (oneDNN, CPU features, the XLA service) read like errors: show its warnings
# and errors only. Set here, before any stage imports TensorFlow; TF_CPP_MIN_LOG_LEVEL=0 in the environment shows all.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

# XLA on CPU runs each of the LSTM's time steps (50 forward and 50 back in every training step) as a few tiny kernels
# handed between threads. Its small-while-loop pass compiles a recurrent loop that touches fewer bytes than this into
# one kernel instead: `train` is ~15 % faster with the defaults, with the same model bytes for 1-unit members
# (populations of 1, 8 and 64 measured; wider members round differently). XLA's default is 1 KB; the loops of
# large populations stay above this and keep XLA's parallel kernels, which one kernel was not faster than at 64.
# An `xla_backend_extra_options` of the user's own in XLA_FLAGS is left as it is.
SMALL_LOOP_BYTES = 1 << 20
if "xla_backend_extra_options" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        f"{os.environ.get('XLA_FLAGS', '')} "
        f"--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold={SMALL_LOOP_BYTES}"
    ).lstrip()
