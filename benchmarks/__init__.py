"""Benchmarks and evaluation-only code (metrics.py); run each script as `python benchmarks/NAME.py`."""
