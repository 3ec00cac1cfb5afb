"""The parity-LSTM pipeline: its DVC stages and the commands around them, each run as `python -m stages.<name>`."""

import os

# TensorFlow's C++ start-up INFO lines (oneDNN, CPU features, the XLA service) read like errors: show its warnings
# and errors only. Set here, before any stage imports TensorFlow; TF_CPP_MIN_LOG_LEVEL=0 in the environment shows all.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
