"""ci_helpers: the work behind the mlops-actions composite actions and the `ci-helpers` CLI.

The version is written once, in pyproject.toml; `ci-helpers --version` reads it from the installed
distribution's metadata (`importlib.metadata`)."""
