"""Apache Airflow integration (extra `mlops-actions[airflow]`): the same pipeline on a schedule."""

from .dag import AlertHook, log_alert, mlops_pipeline_dag

__all__ = ["AlertHook", "log_alert", "mlops_pipeline_dag"]
