"""The data: sampling the sets (sampling.py), the bit encoding (encoding.py), each step's loss factor (loss.py), the
files the stages read and write (files.py), the training batches (batches.py)."""
