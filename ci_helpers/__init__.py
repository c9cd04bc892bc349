"""ci_helpers: the work behind the mlops-actions composite actions and the `ci-helpers` CLI."""

__all__ = ["__version__"]
__version__ = "0.1.0"
