"""The quality study (quality_run.py) and its records."""
