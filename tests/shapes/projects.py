"""The shapes as CI sees them: each built once into a template (bare origin + S3 bucket on moto),
then copied per test case (own origin, own bucket) and cloned fresh like a CI checkout."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.shapes.builders import SHAPES, Shape, build_shape, head, tool_env
from tests.support.project import sh, write_local_remote
from tests.support.servers import copy_bucket, s3_client


@dataclass(frozen=True)
class ShapeTemplate:
    shape: Shape
    origin: Path  # bare repo: main (the merge commit on top), feature and the PR branches (PR_BRANCHES)
    bucket: str  # its DVC remote is s3://<bucket>/dvc
    merge_commit: str  # main's tip: the merge of the feature branch


@dataclass
class ShapeProject:
    """One test case's own copy of a shape: its bare origin and its S3 bucket."""

    shape: Shape
    root: Path
    origin: Path
    bucket: str
    endpoint: str
    merge_commit: str
    env: dict[str, str]

    @property
    def remote_url(self) -> str:
        return f"s3://{self.bucket}/dvc"

    def clone(self, name: str) -> Path:
        """A CI-style checkout of main: a fresh clone, empty DVC cache, the remote at this copy's
        bucket (.dvc/config.local). Returns the git root; the DVC project is `project_dir(clone)`."""
        target = self.root / name
        sh(["git", "clone", "-q", "--branch", "main", str(self.origin), str(target)], self.root)
        write_local_remote(target / self.shape.project, self.remote_url, self.endpoint)
        return target

    def project_dir(self, clone: Path) -> Path:
        return clone / self.shape.project

    def dvc(self, clone: Path, *args: str) -> subprocess.CompletedProcess:
        """Raw `dvc ARGS` in the clone's DVC project (not checked)."""
        return sh(["dvc", *args], self.project_dir(clone), tool_env(self.env), check=False)

    def git(self, *args: str, cwd: Path | None = None) -> str:
        """git in the origin (or in `cwd`), checked."""
        return sh(["git", *args], cwd or self.origin).stdout

    def head(self, ref: str = "main") -> str:
        return head(self.origin, ref)


def build_templates(base: Path, endpoint: str, env: dict[str, str], workers: int = 4) -> dict[str, ShapeTemplate]:
    """Every shape, built in parallel, each pushed to its own bucket `shape-tmpl-<name>`."""
    client = s3_client(endpoint)
    buckets = {name: f"shape-tmpl-{name.replace('_', '-')}" for name in SHAPES}
    for bucket in buckets.values():
        client.create_bucket(Bucket=bucket)

    def build(name: str) -> ShapeTemplate:
        origin = base / name / "origin.git"
        dev = build_shape(
            name, base / name / "dev", f"s3://{buckets[name]}/dvc", endpoint=endpoint, origin=origin, env=env
        )
        return ShapeTemplate(SHAPES[name], origin, buckets[name], head(dev, "main"))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(SHAPES, pool.map(build, SHAPES), strict=True))


def copy_shape(template: ShapeTemplate, root: Path, endpoint: str, env: dict[str, str]) -> ShapeProject:
    """A private copy of a template: the bare origin copied, the bucket's objects copied to a new bucket."""
    root.mkdir(parents=True)
    shutil.copytree(template.origin, root / "origin.git")
    bucket = f"s-{uuid.uuid4().hex[:16]}"
    copy_bucket(endpoint, template.bucket, endpoint, bucket)
    return ShapeProject(template.shape, root, root / "origin.git", bucket, endpoint, template.merge_commit, dict(env))
