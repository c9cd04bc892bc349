"""The provider info Airflow reads through the `apache_airflow_provider` entry point."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def get_provider_info() -> dict:
    try:
        versions = [version("mlops-actions")]
    except PackageNotFoundError:  # imported from a source tree that was never installed
        versions = []
    return {
        "package-name": "mlops-actions",
        "name": "mlops-actions",
        "description": "DVC + MLflow model pipeline: `dvc repro`, a metrics gate against a baseline, "
        "then promote the model by alias in the MLflow Model Registry, or alert and fail.",
        "versions": versions,
        "integrations": [
            {
                "integration-name": "mlops-actions",
                "external-doc-url": "https://github.com/org/mlops-actions#airflow-the-same-pipeline-on-a-schedule",
                "tags": ["software"],
            }
        ],
        "operators": [{"integration-name": "mlops-actions", "python-modules": ["ci_helpers.airflow.operators"]}],
    }
