"""The outside world: dvc, git, MLflow tracking and registry, GitHub Actions I/O, the subprocess runner.

Adapters import nothing of ci_helpers but errors (and each other's runner and redaction).
"""
