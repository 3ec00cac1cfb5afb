"""Load TensorFlow as the keras engine does, compile with XLA, and log a warning through TensorFlow's logger: what
TensorFlow prints as it starts, for tests/test_tensorflow_settings.py.

    python -m tests.start_tensorflow
"""

# The keras engine's package first: it sets TensorFlow's defaults, which TensorFlow reads as it loads.
import parity_lstm.engines.keras  # noqa: F401, I001
import tensorflow as tf

if __name__ == "__main__":
    tf.function(lambda x: x + 1, jit_compile=True)(tf.constant(1.0))
    tf.get_logger().warning("a warning from TensorFlow")
