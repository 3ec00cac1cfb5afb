"""The data: the bit encoding (encoding.py), the files the stages read and write (files.py), the training batches
(batches.py)."""
