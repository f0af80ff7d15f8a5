"""gan_fast's benchmarks: the performance suite, GPU scripts and quality studies (see README.md)."""
