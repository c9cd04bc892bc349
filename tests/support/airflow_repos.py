"""Projects as the Airflow workers that share no disk see them: a bare git repository (the only way
in), its DVC remote on the moto S3 server named in the committed .dvc/config, and a developer's
clone to push changes from. Built once per session per shape, copied per test (origin and bucket)."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support.project import REMOTE, sh
from tests.support.servers import copy_bucket

# The factory's settings both shapes run with, in the dag.test() and the Celery tests.
# The example project: training logs its model to the run; train forced every run, as the nightly
# retraining of the seed intends; the lock committed back.
HOUSING_SETTINGS = {
    "thresholds": ["metrics.r2_score>=0.3"],
    "max_regressions": ["metrics.r2_score=0.02"],
    "baseline_alias": "production",
    "alias": "production",
    "allow_missing_baseline": True,
    "force_stages": ["train"],
    "commit_lock": True,
}
# DVC's get-started shape: nothing logged by training, the `artifacts:` model pulled from the DVC
# remote by promote; the lock kept on the run; the first baseline read at main through DVC.
GET_STARTED_SETTINGS = {
    "thresholds": ["avg_prec.test>=0"],
    "max_regressions": ["avg_prec.test=0.01"],
    "baseline_alias": "production",
    "baseline_ref": "main",
    "alias": "production",
}


@dataclass
class RepoProject:
    """One test's repository: `origin` is what the DAG's repo_url names."""

    origin: Path
    dev: Path  # the developer's clone (git root); the DVC project is dev / subdir
    bucket: str
    endpoint: str
    subdir: str = ""

    @property
    def url(self) -> str:
        return str(self.origin)

    @property
    def project(self) -> Path:
        return self.dev / self.subdir if self.subdir else self.dev

    def head(self, branch: str = "main") -> str:
        return sh(["git", "rev-parse", branch], self.origin).stdout.strip()

    def log(self, branch: str = "main") -> list[str]:
        return sh(["git", "log", "--format=%s", branch], self.origin).stdout.splitlines()

    def push_change(self, message: str, edit: Callable[[Path], None], *, dvc_push: bool = True) -> str:
        """Edit the project in the developer's clone (after pulling the branch), commit, push."""
        sh(["git", "pull", "-q", "--rebase", "origin", "main"], self.dev)
        edit(self.project)
        sh(["git", "add", "-A"], self.dev)
        sh(["git", "commit", "-qm", message], self.dev)
        if dvc_push:
            sh(["dvc", "push", "-q"], self.project)
        sh(["git", "push", "-q", "origin", "HEAD:main"], self.dev)
        return self.head()

    def fresh_clone(self, dest: Path, commit: str | None = None) -> Path:
        """A clone with an empty DVC cache, at `commit` (default: main's tip); the project folder."""
        sh(["git", "clone", "-q", str(self.origin), str(dest)], dest.parent)
        if commit:
            sh(["git", "checkout", "-q", commit], dest)
        return dest / self.subdir if self.subdir else dest

    def s3_keys(self) -> set[str]:
        from tests.support.servers import s3_client

        client = s3_client(self.endpoint)
        keys: set[str] = set()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            keys |= {item["Key"] for item in page.get("Contents", [])}
        return keys


def copy_repo_project(
    template_origin: Path, template_bucket: str, endpoint: str, dest: Path, subdir: str = ""
) -> RepoProject:
    """The template's origin and bucket copied, the copy's .dvc/config naming the new bucket (a
    commit on main, as a team's repository holds its remote)."""
    dest.mkdir(parents=True, exist_ok=True)
    origin = dest / "origin.git"
    shutil.copytree(template_origin, origin)
    bucket = f"t-{uuid.uuid4().hex[:16]}"
    copy_bucket(endpoint, template_bucket, endpoint, bucket)
    dev = dest / "dev"
    sh(["git", "clone", "-q", str(origin), str(dev)], dest)
    sh(["git", "config", "user.name", "Developer"], dev)
    sh(["git", "config", "user.email", "dev@example.invalid"], dev)
    project = dev / subdir if subdir else dev
    (project / ".dvc" / "config.local").unlink(missing_ok=True)
    url = sh(["dvc", "remote", "list"], project).stdout.split()[1]
    new_url = url.replace(f"s3://{template_bucket}/", f"s3://{bucket}/", 1)
    sh(["dvc", "remote", "modify", REMOTE, "url", new_url], project)
    sh(["dvc", "remote", "modify", REMOTE, "endpointurl", endpoint], project)
    sh(["git", "commit", "-qam", f"the DVC remote is {new_url}"], dev)
    sh(["git", "push", "-q", "origin", "HEAD:main"], dev)
    return RepoProject(origin, dev, bucket, endpoint, subdir)


def template_origin_of_housing(template: Path) -> Path:
    """tests/conftest.py's `template`: the example project, pushed to origin.git and the bucket."""
    return template / "origin.git"


def build_get_started_origin(base: Path, endpoint: str, bucket: str, env: dict[str, str] | None = None) -> Path:
    """DVC's get-started shape with its data and outputs pushed to `bucket` and main to a bare origin."""
    from tests.shapes.builders import build_shape

    origin = base / "origin.git"
    dev = build_shape(
        "get_started", base / "dev", f"s3://{bucket}/get-started", endpoint=endpoint, origin=origin, env=env
    )
    # the endpoint in the committed config, as a team whose remote is S3-compatible keeps it
    (dev / ".dvc" / "config.local").unlink(missing_ok=True)
    sh(["dvc", "remote", "modify", REMOTE, "endpointurl", endpoint], dev)
    sh(["git", "checkout", "-q", "main"], dev)
    sh(["git", "commit", "-qam", "the DVC remote's endpoint"], dev)
    sh(["git", "push", "-q", "origin", "main"], dev)
    return origin


def lock_record_of_run(client, run_id: str, dest: Path) -> dict:
    """The `mlops_lock.json` run_dvc_pipeline keeps on its MLflow run."""
    local = client.download_artifacts(run_id, "mlops_lock.json", str(dest))
    return json.loads(Path(local).read_text())


def dvc_pull(project: Path, *targets: str) -> subprocess.CompletedProcess:
    return sh(["dvc", "pull", "-q", *targets], project)


@dataclass(frozen=True)
class RegistryView:
    """What a scenario's DAG runs left in MLflow: its experiment's runs, its model's versions and aliases."""

    tracking_uri: str
    experiment: str
    model_name: str

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.tracking_uri, registry_uri=self.tracking_uri)

    def runs(self) -> list:
        """Newest first; none when the experiment was never created."""
        client = self.client()
        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is None:
            return []
        return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])

    def versions(self) -> list[str]:
        return sorted(str(v.version) for v in self.client().search_model_versions(f"name = '{self.model_name}'"))

    def alias(self, alias: str) -> str | None:
        holder = (self.client().get_registered_model(self.model_name).aliases or {}).get(alias)
        return str(holder) if holder is not None else None
