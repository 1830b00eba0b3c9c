"""Standalone commands: predict, the benchmark, the data fetcher and converter, the notebook runner and the GPU run."""
