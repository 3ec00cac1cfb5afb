"""The XLA options the keras engine compiles with, added to the environment before its first compile (XLA reads
XLA_FLAGS and TF_XLA_FLAGS then, not when TensorFlow is imported).
"""

import hashlib
import os
import shlex
from collections.abc import MutableMapping

# XLA on CPU runs each of the LSTM's time steps (50 forward and 50 back in every training step) as a few tiny kernels
# handed between threads. Its small-while-loop pass compiles a recurrent loop that touches fewer bytes than this into
# one kernel instead, which keeps 1-unit members' bytes (docs/speed.md). XLA's default is 1 KB; the loops of large
# populations stay above this and keep XLA's parallel kernels.
SMALL_LOOP_OPTION = "xla_cpu_small_while_loop_byte_threshold"
SMALL_LOOP_BYTES = 1 << 20


def with_option(flags: str, flag: str, value: str) -> str:
    """`flags` with `--flag=value` added, unless `flags` sets `flag` already (the user's choice stands)."""
    words = shlex.split(flags)
    if any(word == f"--{flag}" or word.startswith(f"--{flag}=") for word in words):
        return flags
    return shlex.join([*words, f"--{flag}={value}"])


def with_backend_option(flags: str, option: str, value: str) -> str:
    """`flags` with `option=value` among its `--xla_backend_extra_options` (a comma-separated list), unless the user
    set `option` there."""
    words = shlex.split(flags)
    for index, word in enumerate(words):
        name, _, options = word.partition("=")
        if name == "--xla_backend_extra_options":
            if option not in (entry.partition("=")[0] for entry in options.split(",")):
                words[index] = f"{word},{option}={value}" if options else f"{name}={option}={value}"
            return shlex.join(words)
    return shlex.join([*words, f"--xla_backend_extra_options={option}={value}"])


def set_training_options(environ: MutableMapping[str, str] = os.environ) -> None:
    """Add the project's XLA options to `environ`, keeping any the user set."""
    environ["XLA_FLAGS"] = with_backend_option(environ.get("XLA_FLAGS", ""), SMALL_LOOP_OPTION, str(SMALL_LOOP_BYTES))
    # TensorFlow's opt-in persistent compilation cache (TF_XLA_FLAGS=--tf_xla_persistent_cache_directory=DIR) keys an
    # executable by the graph it compiles, not by XLA_FLAGS, so a cache filled under other XLA options would hand
    # their executables back (3-unit members then train to other bytes). Its file-name prefix names the options.
    digest = hashlib.sha256(environ["XLA_FLAGS"].encode()).hexdigest()[:16]
    environ["TF_XLA_FLAGS"] = with_option(
        environ.get("TF_XLA_FLAGS", ""), "tf_xla_persistent_cache_prefix", f"xla_compile_cache_{digest}"
    )
