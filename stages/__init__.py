"""The parity-LSTM pipeline: its DVC stages and the commands around them, each run as `python -m stages.<name>`."""

import os

# Defaults for TensorFlow's logging, which only `train` loads; they must be set before TensorFlow is imported, and
# any value in the environment wins. TensorFlow's C++ start-up INFO lines (CPU features, the XLA service) read like
# errors: warnings and errors only.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
# On CPUs with AVX-512 VNNI or AMX, TensorFlow turns its oneDNN kernels on and announces it in absl lines that
# TF_CPP_MIN_LOG_LEVEL does not reach. Off, as on every other CPU, so every CPU runs the same kernels for the graph
# ops (training is compiled by XLA either way).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
