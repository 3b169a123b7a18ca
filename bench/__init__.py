"""Benchmark harness for preserver (not a test suite: pytest never collects it).

`python bench/run.py --help` runs it; see BENCHMARKS.md for the last results.
"""
