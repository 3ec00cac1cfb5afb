"""The parity-LSTM pipeline: its DVC stages and the commands around them, each run as `python -m stages.<name>`."""
