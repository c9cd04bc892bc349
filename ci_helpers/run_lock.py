"""The lock a scheduled run built, kept on its MLflow run (`mlops_lock.json`): the lock files and
the out hashes. With a checkout per task and no commit-back, it is the only copy of the lock: a
later task, or anyone with a fresh clone of the run's commit, writes it back and `dvc pull`s."""

from __future__ import annotations

import json
from pathlib import Path

from .adapters.shared_repo import workspace_changed

LOCK_ARTIFACT = "mlops_lock.json"
LOCK_COMMIT_TAG = "mlops.lock_commit"  # the commit that holds the run's dvc.lock, when committed back
OUT_MD5_PREFIX = "mlops.ci_md5."  # the built outs, as master-build tags them (trace reads them)


def lock_record(root: Path, lockfiles: tuple[str, ...], commit: str, lock_commit: str | None, hashes: dict) -> str:
    """The JSON text kept on the run."""
    texts = {path: (root / path).read_text() for path in lockfiles if (root / path).is_file()}
    record = {"commit": commit, "lock_commit": lock_commit, "lockfiles": texts, "outs": hashes}
    return json.dumps(record, indent=2, sort_keys=True) + "\n"


def restore_lock_from_run(root: Path, record_text: str) -> None:
    """Write the run's lock files into a checkout of its commit: DVC then pulls at their hashes."""
    record = json.loads(record_text)
    for path, text in (record.get("lockfiles") or {}).items():
        (root / path).write_text(text)
    workspace_changed(root)
