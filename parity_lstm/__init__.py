"""What the stages share: params.py (the params' schemas), model.py (the model, defined once), data/ (encoding,
files, batches), numerics/ (the compiled forward pass and training step) and engines/ (who trains: fused, keras)."""
