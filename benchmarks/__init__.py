"""The parts of `scripts/benchmark.py`: one module per section, and what the sections share.

Not part of the installed package: the benchmark compares svf-tf with PyTorch
models written from the reference repositories (`tests/torch_import`), and
PyTorch is a benchmark-only dependency. Every section's work runs in a fresh
process (`timing.isolated`), so that each process's peak memory is its own.
"""
