"""The four DVC stages of the parity-LSTM pipeline, each run as `python -m stages.<name>`: generate, targets, train,
evaluate. Leaves: nothing imports them; what they share is in the package parity_lstm."""
