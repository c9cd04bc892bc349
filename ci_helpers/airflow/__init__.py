"""Apache Airflow integration (extra `mlops-actions[airflow]`): the same pipeline on a schedule.

Installed, it is an Airflow provider (`airflow providers list` shows `mlops-actions`). The names
below are imported on first use, so that Airflow reads the provider's info without importing
Airflow's task SDK twice.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "mlops_pipeline_dag": ".dag",
    "AlertHook": ".operators",
    "log_alert": ".operators",
    "DvcReproOperator": ".operators",
    "GateMetricsOperator": ".operators",
    "PromoteModelOperator": ".operators",
    "MlopsAlertOperator": ".operators",
    "MlopsGateFailed": ".exceptions",
    "MlopsConfigError": ".exceptions",
    "MlopsInfrastructureError": ".exceptions",
    "MlopsStageFailed": ".exceptions",
    "MlopsInternalError": ".exceptions",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
