"""Measures of a render, the benchmark and its reference loop."""
