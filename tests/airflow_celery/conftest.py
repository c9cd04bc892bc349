"""A real CeleryExecutor Airflow deployment on 127.0.0.1 (tests/airflow_celery/cluster.py): redis,
postgres, the API server, scheduler, dag-processor and two Celery workers that share only the dags
folder. One cluster at a time per test process, reused by every module that asks for it with the same
worker environment."""

from __future__ import annotations

import atexit

import pytest

from .cluster import CeleryCluster, ClusterError, can_install_debian_packages, missing_debian_parts, missing_parts


def _unavailable_reason() -> str | None:
    """Why the cluster cannot run on this machine at all: Debian's servers are missing and there is
    no root or apt-get to install them. Anything else missing is a set-up step not run: a failure."""
    debian = missing_debian_parts()
    if debian and not can_install_debian_packages():
        return f"{' and '.join(debian)} not installed, and this machine cannot install them (no root or no apt-get)"
    return None


# For every module that uses `celery_cluster`: skipped, with the reason, only where the servers cannot
# be installed; scripts/setup.sh installs them (scripts/setup-airflow-celery.sh) everywhere else.
requires_celery_cluster = pytest.mark.skipif(_unavailable_reason() is not None, reason=_unavailable_reason() or "")


@pytest.fixture(scope="session")
def celery_worker_env() -> dict[str, str]:
    """Extra environment for every Airflow process of the cluster (the workers, and the dag-processor
    that parses the same DAG files): override it in a module or a conftest, e.g. with the session's
    mlflow server's MLFLOW_TRACKING_URI or AIRFLOW_CONN_* connections. The test process's own
    environment (the fake AWS credentials, PATH, PYTHONPATH, git identity) is inherited already."""
    return {}


class _Clusters:
    """Keeps the one running cluster; a module asking for another worker environment gets a new one."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp_path_factory = tmp_path_factory
        self.current: CeleryCluster | None = None
        self.failed: dict[tuple, str] = {}
        atexit.register(self.stop)  # also when the session ends without its teardown

    def get(self, extra_env: dict[str, str]) -> CeleryCluster:
        key = tuple(sorted(extra_env.items()))
        if key in self.failed:
            pytest.fail(self.failed[key], pytrace=False)
        current = self.current
        if current is not None and current.extra_env == extra_env:
            try:
                current.check_alive()
                return current
            except ClusterError:
                pass  # a test stopped a part of it: start afresh
        self.stop()
        missing = missing_parts()
        if missing:
            message = f"the Celery cluster needs {', '.join(missing)}: run scripts/setup-airflow-celery.sh (scripts/setup.sh does)"
            self.failed[key] = message
            pytest.fail(message, pytrace=False)
        for attempt in range(1, 4):
            cluster = CeleryCluster(self.tmp_path_factory.mktemp("celery-cluster"), dict(extra_env))
            try:
                self.current = cluster.start()
                return cluster
            except ClusterError as error:
                # a port found free was taken (by another xdist worker's server) before ours bound it
                if attempt < 3 and "address already in use" in str(error).lower():
                    continue
                self.failed[key] = f"the Celery cluster did not start: {error}"
                break
        pytest.fail(self.failed[key], pytrace=False)

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None


@pytest.fixture(scope="session")
def _celery_clusters(tmp_path_factory):
    pytest.importorskip("airflow", reason="the airflow extra is installed by scripts/setup.sh")
    clusters = _Clusters(tmp_path_factory)
    yield clusters
    clusters.stop()


@pytest.fixture(scope="module")
def celery_cluster(_celery_clusters, celery_worker_env) -> CeleryCluster:
    """The running cluster (see CeleryCluster): started on first use, ~15 s, then shared by every
    module of this test process whose `celery_worker_env` is the same; stopped at the session's end."""
    return _celery_clusters.get(celery_worker_env)
