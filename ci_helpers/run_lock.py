"""The lock a scheduled run built, kept on its MLflow run (`mlops_lock.json`): the lock files and
the out hashes. Until promote commits it back (`commit_lock`, and only when the gate passed), or
without that, it is the only copy of the lock: a later task, or anyone with a fresh clone of the
run's commit, writes it back and `dvc pull`s."""

from __future__ import annotations

import json
from pathlib import Path

from .adapters.shared_repo import workspace_changed

LOCK_ARTIFACT = "mlops_lock.json"
LOCK_COMMIT_TAG = "mlops.lock_commit"  # the commit that holds the run's dvc.lock, when committed back
OUT_MD5_PREFIX = "mlops.ci_md5."  # the built outs, as master-build tags them (trace reads them)


def lock_record(root: Path, lockfiles: tuple[str, ...], git_files: list[str], commit: str, hashes: dict) -> str:
    """The JSON text kept on the run: the lock files, the outs git keeps (`cache: false` metrics and
    plots, whose content the lock's hashes name), and every out's hash."""

    def texts(paths) -> dict[str, str]:
        return {path: (root / path).read_text() for path in paths if (root / path).is_file()}

    record = {"commit": commit, "lockfiles": texts(lockfiles), "files": texts(git_files), "outs": hashes}
    return json.dumps(record, indent=2, sort_keys=True) + "\n"


def restore_lock_from_run(root: Path, record_text: str) -> None:
    """Write the run's lock files (and the outs git keeps) into a checkout of its commit: DVC then
    pulls at their hashes, and `dvc status` is clean."""
    record = json.loads(record_text)
    for path, text in {**(record.get("lockfiles") or {}), **(record.get("files") or {})}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    workspace_changed(root)
