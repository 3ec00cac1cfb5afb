"""Train a population briefly with the keras engine and print a digest of its weights: XLA reads its options once a
process, so tests/test_tensorflow_settings.py runs this in processes of their own.

    python -m tests.keras_engine_digest
"""

import hashlib

from tests.easy_fit import EASY_TRAIN, fit

if __name__ == "__main__":
    trained = fit(EASY_TRAIN.model_copy(update={"engine": "keras", "units": 1, "population": 2, "epochs": 1}))
    print(hashlib.sha256(trained.members.tobytes()).hexdigest())
