"""Standalone commands: predict, the recipe ablation, the benchmark, the data converter, the notebook runner and the GPU run."""
