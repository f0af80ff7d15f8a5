"""The performance suite: gan_fast's training step and ops against NumPy, PyTorch and
builds of gan_fast itself (see benchmarks/README.md)."""
