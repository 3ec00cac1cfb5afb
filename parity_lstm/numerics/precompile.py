"""Compile (or load from the machine's cache) every kernel, as training and scoring call them first.

python -m parity_lstm.numerics.precompile [--json]     say which kernels were loaded, which compiled, and how long
"""

import json
import sys
import time

from parity_lstm.model import Layout
from parity_lstm.numerics import backprop, forward
from parity_lstm.numerics.compiled import cache_folder

DEFAULT = Layout(1)  # the reference experiment's one-unit LSTM


def compile_all() -> dict:
    """Every kernel ready for DEFAULT members: the seconds it took (imports included), the kernels loaded from the
    cache and those compiled."""
    started = time.perf_counter()
    forward.compile_all(DEFAULT)
    backprop.compile_all(DEFAULT)
    kernels = [forward.forward_kernel(DEFAULT), backprop.gradient_kernel(DEFAULT)]
    loaded = [kernel.__name__ for kernel in kernels if sum(kernel.stats.cache_hits.values())]
    return {
        "seconds": time.perf_counter() - started,
        "loaded": loaded,
        "compiled": [kernel.__name__ for kernel in kernels if kernel.__name__ not in loaded],
        "cache": str(cache_folder()),
    }


if __name__ == "__main__":
    done = compile_all()
    if sys.argv[1:] == ["--json"]:
        print(json.dumps(done))
    else:
        print(
            f"kernels ready in {done['seconds']:.2f} s: {len(done['loaded'])} loaded from {done['cache']}, "
            f"{len(done['compiled'])} compiled ({', '.join(done['compiled']) or 'none'})"
        )
