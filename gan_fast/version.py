"""gan_fast.version: the package's version, at the bottom of the package (no imports)."""
__version__ = "0.1.0"
