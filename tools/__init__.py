"""Tools a user types beside the pipeline: `python -m tools.<name>`."""
