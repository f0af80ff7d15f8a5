"""gan_fast's benchmarks and studies (not part of the installed package; README.md here
says what each script measures and how long it takes). A package, so that the scripts
import each other without touching sys.path: run them from the repository root as modules,
e.g. `python -m benchmarks.perf.compare`, with the development install
(`pip install -e . --no-build-isolation`), so that `import gan_fast` finds the built
extension."""
