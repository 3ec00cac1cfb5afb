"""The benchmark: the pipeline timed against the reference program's method, at scale, its populations, scoring, the
Airflow cluster and the test suite; the studies of docs/results.md as queued grids. One part a module, run as `python
-m bench --parts ...` from the repository root; each part's result is stored, stamped, in bench/results/<part>.json."""
