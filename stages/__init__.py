"""The commands of the parity-LSTM pipeline, each run as `python -m stages.<name>`: the DVC stages (generate, targets,
train, evaluate) and predict, pictures and convergence. What they share is in the package parity_lstm."""
