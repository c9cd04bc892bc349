"""A project whose DVC-tracked directory holds thousands of files, on the moto S3 server of this
process: main records the directory, branch `pr` changes a few of its files.

`dvc push` of 20,000 objects to moto takes over a minute, so the objects DVC's cache holds are put
into moto's in-process backend directly (the same objects at the same keys `dvc push` writes); the
check under test still asks the server over HTTP.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from .project import REMOTE, sh, write_local_remote

TRAIN = "data/train"
REMOTE_PREFIX = "dvc"


@dataclass(frozen=True)
class ScaleProject:
    dev: Path  # main and branch `pr`, with the DVC cache of both
    bucket: str
    endpoint: str
    changed: tuple[str, ...]  # files of data/train the branch rewrote

    def clone(self, where: Path, branch: str, endpoint: str | None = None) -> Path:
        """A fresh CI clone of `branch` (no DVC cache), its remote at `endpoint` (a proxy, say)."""
        sh(["git", "clone", "-q", "-b", branch, str(self.dev), str(where)], self.dev.parent)
        write_local_remote(where, f"s3://{self.bucket}/{REMOTE_PREFIX}", endpoint or self.endpoint, default=True)
        return where


def _s3_backend():
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    return s3_backends[DEFAULT_ACCOUNT_ID]["global"]


def object_key(oid: str) -> str:
    return f"{REMOTE_PREFIX}/files/md5/{oid[:2]}/{oid[2:]}"


def upload_cache(dev: Path, bucket: str) -> int:
    """Put every object of `dev`'s DVC cache into `bucket` where `dvc push` puts it."""
    backend = _s3_backend()
    count = 0
    for path in (dev / ".dvc" / "cache" / "files" / "md5").glob("*/*"):
        oid = path.parent.name + path.name
        backend.put_object(bucket, object_key(oid), path.read_bytes())
        count += 1
    return count


def fill_with_other_objects(bucket: str, count: int, seed: str = "other-project") -> None:
    """`count` objects of an unrelated project under the same remote path (a shared remote)."""
    backend = _s3_backend()
    for i in range(count):
        oid = hashlib.md5(f"{seed}-{i}".encode()).hexdigest()
        backend.put_object(bucket, object_key(oid), f"{seed} {i}\n".encode())


def delete_object(bucket: str, oid: str) -> None:
    _s3_backend().delete_object(bucket, object_key(oid))


def build_scale_project(base: Path, endpoint: str, bucket: str, files: int, changed: int) -> ScaleProject:
    """main: data/train of `files` files, tracked by data/train.dvc; branch `pr`: `changed` of them
    rewritten and `dvc add`ed again. Every object of both is on the remote."""
    dev = base / "dev"
    shutil.rmtree(dev, ignore_errors=True)
    dev.mkdir(parents=True)
    sh(["git", "init", "-q", "-b", "main"], dev)
    sh(["dvc", "init", "-q"], dev)
    sh(["dvc", "remote", "add", "-d", REMOTE, f"s3://{bucket}/{REMOTE_PREFIX}"], dev)
    sh(["dvc", "remote", "modify", REMOTE, "endpointurl", endpoint], dev)
    folder = dev / TRAIN
    folder.mkdir(parents=True)
    for i in range(files):
        (folder / f"{i:05d}.txt").write_text(f"row {i}\n")
    sh(["dvc", "add", "-q", TRAIN], dev)
    sh(["git", "add", "-A"], dev)
    sh(["git", "commit", "-qm", "train data"], dev)
    sh(["git", "checkout", "-qb", "pr"], dev)
    step = max(1, files // max(1, changed))
    names = tuple(f"{i:05d}.txt" for i in range(0, step * changed, step))
    for name in names:
        (folder / name).write_text(f"changed {name}\n")
    sh(["dvc", "add", "-q", TRAIN], dev)
    sh(["git", "commit", "-qam", "change a few training files"], dev)
    sh(["git", "checkout", "-q", "main"], dev)
    _s3_backend().create_bucket(bucket, "us-east-1")
    upload_cache(dev, bucket)
    return ScaleProject(dev, bucket, endpoint, names)


def dir_md5(checkout: Path) -> str:
    """The .dir hash data/train.dvc records in `checkout`."""
    import yaml

    return yaml.safe_load((checkout / f"{TRAIN}.dvc").read_text())["outs"][0]["md5"]


def manifest_oids(dev: Path, md5: str) -> list[str]:
    import json

    path = dev / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    return [entry["md5"] for entry in json.loads(path.read_text())]
