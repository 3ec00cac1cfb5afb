"""The benchmark: the reference program's method against this pipeline, the pipeline at scale, its training
populations, seed sweeps, reproducibility and test suite, one part a module, run as `python -m bench --parts ...`
from the repository root. Each part's result is stored, stamped, in bench/results/<part>.json."""
