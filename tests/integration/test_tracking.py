"""The MLflow adapter against a real `mlflow server` on 127.0.0.1."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.integration


def test_jobs_that_create_the_same_experiment_at_once_all_get_it(mlflow_server):
    """Two PR validations of one project starting together both create `<project>-pr`: MLflow
    answers the second RESOURCE_ALREADY_EXISTS, which must mean "use it", not a failed job."""
    from mlflow.tracking import MlflowClient

    from ci_helpers.adapters.tracking import _experiment_id

    name = f"race-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(
            pool.map(lambda _: _experiment_id(MlflowClient(mlflow_server.url), name, mlflow_server.url), range(8))
        )

    assert len(set(ids)) == 1
    assert MlflowClient(mlflow_server.url).get_experiment_by_name(name).experiment_id == ids[0]
