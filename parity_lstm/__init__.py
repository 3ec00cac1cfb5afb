"""What the stages and tools share: params.py (the params' schemas), model.py (the model, defined once), data/
(sampling, encoding, loss factors, files, batches), numerics/ (the compiled kernels), engines/ (who trains: fused,
keras), training.py (a population fit and its member chosen), trained.py (a model file, ready to answer), scoring.py
(accuracy at a length) and rates.py (converged, holds, solved, Wilson intervals)."""
