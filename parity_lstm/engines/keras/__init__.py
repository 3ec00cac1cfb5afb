"""The `keras` training engine (fit.py: the population as one Keras model, population.py, on TensorFlow with XLA,
xla.py, fed by tf.data, batches.py) and the Keras oracle (oracle.py: the model as a Keras model), which tests check
the fused numerics against.

TensorFlow reads its logging and kernel settings as it loads, so this package sets their defaults before any of its
modules imports it (a value in the environment wins): warnings and errors only, not the C++ start-up INFO lines,
which read like errors; and oneDNN off, as it is on most CPUs (those with AVX-512 VNNI or AMX turn it on, and
announce it in lines the log level does not reach), so every CPU runs the same kernels for the graph ops.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
