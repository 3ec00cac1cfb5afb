"""DVC stages of the parity-LSTM pipeline; run each as `python -m stages.<name>`."""
