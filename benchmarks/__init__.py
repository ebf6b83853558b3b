"""Side-by-side benchmarks of jobrunner and its peer libraries (run with ``run.py``)."""
