"""The parity-LSTM pipeline: its DVC stages and the commands around them, each run as `python -m stages.<name>`."""

import hashlib
import os

# TensorFlow's C++ start-up INFO lines (oneDNN, CPU features, the XLA service) read like errors: show its warnings
# and errors only. Set here, before any stage imports TensorFlow; TF_CPP_MIN_LOG_LEVEL=0 in the environment shows all.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
# On CPUs with AVX-512 VNNI or AMX, TensorFlow turns its oneDNN kernels on and announces it in two absl lines that
# TF_CPP_MIN_LOG_LEVEL does not reach. Off, as on every other CPU, so every CPU runs the same kernels for the graph
# ops (training is compiled by XLA either way: docs/reproducibility.md); warnings and errors still show.
# TF_ENABLE_ONEDNN_OPTS=1 in the environment turns them on.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def add_flag(variable: str, flag: str, value: str) -> None:
    """Append `--flag=value` to the environment variable `variable`, unless the user has set `flag` in it already."""
    current = os.environ.get(variable, "")
    if flag not in current:
        os.environ[variable] = f"{current} --{flag}={value}".lstrip()


# XLA on CPU runs each of the LSTM's time steps (50 forward and 50 back in every training step) as a few tiny kernels
# handed between threads. Its small-while-loop pass compiles a recurrent loop that touches fewer bytes than this into
# one kernel instead: `train` is ~15 % faster with the defaults, with the same model bytes for 1-unit members
# (populations of 1, 8 and 64 measured; wider members round differently). XLA's default is 1 KB; the loops of
# large populations stay above this and keep XLA's parallel kernels, which one kernel was not faster than at 64.
SMALL_LOOP_BYTES = 1 << 20
add_flag("XLA_FLAGS", "xla_backend_extra_options", f"xla_cpu_small_while_loop_byte_threshold={SMALL_LOOP_BYTES}")

# TensorFlow's opt-in persistent compilation cache (TF_XLA_FLAGS=--tf_xla_persistent_cache_directory=DIR) keys an
# executable by the graph it compiles, not by XLA_FLAGS, so a cache filled under other XLA options would hand their
# executables back (measured: 3-unit members then train to other bytes). Its file-name prefix names the options
# instead.
XLA_OPTIONS_DIGEST = hashlib.sha256(os.environ["XLA_FLAGS"].encode()).hexdigest()[:16]
add_flag("TF_XLA_FLAGS", "tf_xla_persistent_cache_prefix", f"xla_compile_cache_{XLA_OPTIONS_DIGEST}")
