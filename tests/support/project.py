"""Builds real example-project repositories: git with a bare origin, DVC with an S3 remote on moto."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from .servers import copy_bucket

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "housing"
REMOTE = "storage"

# Branches the template builds on top of main, each a kind of pull request.
PR_PARAMS = {
    "pr-better": {"n_estimators": 90},
    "pr-worse": {"n_estimators": 4, "max_depth": 1},
    "pr-unpushed": {"n_estimators": 45},
}


def sh(
    args: list[str], cwd: Path, env: dict | None = None, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        args, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False, input=input
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}) in {cwd}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def lock_out_md5(lock_text: str, path: str) -> str:
    """The md5 a dvc.lock's text records for the out at `path`."""
    import yaml

    for stage in yaml.safe_load(lock_text)["stages"].values():
        for out in stage.get("outs", []) or []:
            if out["path"] == path:
                return out["md5"]
    raise KeyError(path)


def set_train_params(project: Path, **changes: object) -> None:
    path = project / "params.yaml"
    text = path.read_text()
    for key, value in changes.items():
        text, count = re.subn(rf"(?m)^(  {key}:) .*$", rf"\g<1> {value}", text)
        assert count == 1, key
    path.write_text(text)


def write_local_remote(
    project: Path, url: str, endpoint: str | None = None, name: str = REMOTE, default: bool = False
) -> None:
    """Point a remote at a per-test location without touching the committed .dvc/config."""
    lines = ["[core]", f"    remote = {name}"] if default else []
    lines += [f"['remote \"{name}\"']", f"    url = {url}"]
    if endpoint:
        lines.append(f"    endpointurl = {endpoint}")
    (project / ".dvc" / "config.local").write_text("\n".join(lines) + "\n")


def build_template(base: Path, s3_endpoint: str, bucket: str, mlflow_db: Path, full: bool = True) -> tuple[Path, Path]:
    """main plus one branch per kind of PR, pushed to a bare origin and (mostly) to the bucket.

    full=False builds main and pr-better only.
    """
    origin, dev = base / "origin.git", base / "dev"
    sh(["git", "init", "-q", "--bare", "-b", "main", str(origin)], base)
    shutil.copytree(EXAMPLE, dev, ignore=shutil.ignore_patterns("mlflow.db", "mlruns", "__pycache__"))
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{mlflow_db}"}
    sh(["git", "init", "-q", "-b", "main"], dev)
    sh(["dvc", "init", "-q"], dev)
    sh(["dvc", "remote", "add", "-d", REMOTE, f"s3://{bucket}/dvc"], dev)
    sh(["dvc", "remote", "modify", REMOTE, "endpointurl", s3_endpoint], dev)
    sh(["dvc", "repro", "-q"], dev, env)
    sh(["git", "add", "-A"], dev)
    sh(["git", "commit", "-qm", "housing model"], dev)
    sh(["git", "remote", "add", "origin", str(origin)], dev)
    sh(["git", "push", "-q", "-u", "origin", "main"], dev)
    sh(["dvc", "push", "-q"], dev)
    for branch, params in PR_PARAMS.items() if full else [("pr-better", PR_PARAMS["pr-better"])]:
        sh(["git", "checkout", "-q", "-b", branch, "main"], dev)
        set_train_params(dev, **params)
        sh(["dvc", "repro", "-q"], dev, env)
        sh(["git", "commit", "-qam", f"{branch}: retrain with {params}"], dev)
        sh(["git", "push", "-q", "origin", branch], dev)
        if branch != "pr-unpushed":
            sh(["dvc", "push", "-q"], dev)
    if not full:
        sh(["git", "checkout", "-q", "main"], dev)
        return origin, dev
    # Params changed, `dvc repro` forgotten.
    sh(["git", "checkout", "-q", "-b", "pr-stale", "main"], dev)
    set_train_params(dev, learning_rate=0.2)
    sh(["git", "commit", "-qam", "pr-stale: change params without repro"], dev)
    sh(["git", "push", "-q", "origin", "pr-stale"], dev)
    # Committed metrics that CI's own evaluation will not reproduce (edited, then `dvc commit`).
    sh(["git", "checkout", "-q", "-b", "pr-tampered", "main"], dev)
    sh(["dvc", "checkout", "-q", "--force"], dev)  # the workspace holds main's outputs again, not the last PR's
    metrics = dev / "metrics.json"
    metrics.write_text(re.sub(r'"r2_score": [0-9.]+', '"r2_score": 0.99', metrics.read_text()))
    sh(["dvc", "commit", "-q", "-f", "evaluate"], dev)
    sh(["git", "commit", "-qam", "pr-tampered: metrics that CI cannot reproduce"], dev)
    sh(["git", "push", "-q", "origin", "pr-tampered"], dev)
    # A merged change whose pushed binary is not what the code builds (a stale or hand-made model,
    # `dvc commit`ed): CI must rebuild it and never use the developer's binary.
    sh(["git", "checkout", "-q", "-b", "dev-model", "main"], dev)
    set_train_params(dev, n_estimators=30)
    sh(["dvc", "repro", "-q", "train", "evaluate"], dev, env)
    sh(["git", "checkout", "-q", "params.yaml"], dev)
    sh(["dvc", "commit", "-q", "-f", "train", "evaluate"], dev)
    sh(["git", "commit", "-qam", "dev-model: a model binary the code does not build"], dev)
    sh(["git", "push", "-q", "origin", "dev-model"], dev)
    sh(["dvc", "push", "-q"], dev)
    sh(["git", "checkout", "-q", "main"], dev)
    return origin, dev


@dataclass
class Project:
    """One test's copy of the template: its own bare origin, dev workspace and S3 bucket."""

    root: Path
    origin: Path
    dev: Path
    bucket: str
    s3_endpoint: str

    @classmethod
    def copy_of(cls, template: Path, root: Path, s3_endpoint: str, template_bucket: str) -> Project:
        shutil.copytree(template / "origin.git", root / "origin.git")
        shutil.copytree(template / "dev", root / "dev", symlinks=True)
        bucket = f"t-{uuid.uuid4().hex[:16]}"
        copy_bucket(s3_endpoint, template_bucket, s3_endpoint, bucket)
        project = cls(root, root / "origin.git", root / "dev", bucket, s3_endpoint)
        sh(["git", "remote", "set-url", "origin", str(project.origin)], project.dev)
        write_local_remote(project.dev, project.remote_url)
        return project

    @property
    def remote_url(self) -> str:
        return f"s3://{self.bucket}/dvc"

    def checkout(self, branch: str, name: str | None = None, shallow: bool = False) -> Path:
        """A CI-style checkout of `branch`: a fresh clone with an empty DVC cache."""
        target = self.root / (name or f"ci-{branch}")
        args = ["git", "clone", "-q", "--branch", branch]
        if shallow:
            args += ["--depth", "1", "--single-branch"]
            source = f"file://{self.origin}"
        else:
            source = str(self.origin)
        sh([*args, source, str(target)], self.root)
        write_local_remote(target, self.remote_url)
        return target

    def head(self, ref: str) -> str:
        return sh(["git", "rev-parse", ref], self.origin).stdout.strip()
