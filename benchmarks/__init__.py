"""The repository's benchmarks: scripts run from the repository root (`python benchmarks/<name>.py`); the
learning-curve modules they share live in `benchmarks.curves`. Importing this package runs nothing."""
