"""Write a registered version's provenance statement: gather what the statement names from the
project model, hash the files MLflow serves, store the statement in the version's run, then tag
the version with its digest (artifact first, tag last: a crash between them leaves no tag, and a
re-run writes both)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .adapters.model_files import (
    downloaded_version,
    find_version,
    read_run_artifact,
    run_started_on,
    set_version_tag,
    write_run_artifact,
)
from .project import Project, read_params
from .provenance_statement import (
    DIGEST_TAG,
    DvcDependency,
    ParamsFile,
    StatementInputs,
    Subject,
    sha256_hex,
    statement_artifact,
    statement_bytes,
    subjects_of,
    values_sha256,
)


@dataclass(frozen=True)
class WrittenStatement:
    name: str
    version: str
    sha256: str
    data: bytes
    reused: bool  # the version already held a valid statement (a re-run): left as it was

    @property
    def done_text(self) -> str:
        return "provenance statement kept" if self.reused else "provenance statement written"


Compose = Callable[[tuple[Subject, ...], datetime | None], StatementInputs]


def attach_statement(tracking_uri: str, name: str, version: str, compose: Compose) -> WrittenStatement | None:
    """Give `name/version` its statement, stored at statement_artifact() in its run, its sha256 in
    the DIGEST_TAG tag. A version that already holds a statement matching its tag keeps it. None
    (with a warning) for a version with no run to hold it (registered from a bare storage URI)."""
    from .provenance_statement import build_statement

    record = find_version(tracking_uri, name, version=version)
    if not record.run_id:
        sys.stderr.write(
            f"mlops: warning: v{version} of '{name}' has no MLflow run to hold its provenance statement; "
            "register it from a run (--run-id) to have one\n"
        )
        return None
    recorded = record.tags.get(DIGEST_TAG)
    if recorded:
        existing = read_run_artifact(tracking_uri, record.run_id, statement_artifact(name, version))
        if existing is not None and sha256_hex(existing) == recorded:
            return WrittenStatement(name, version, recorded, existing, True)
    with downloaded_version(tracking_uri, record) as local:
        subjects = subjects_of(local)
    data = statement_bytes(build_statement(compose(subjects, run_started_on(tracking_uri, record.run_id))))
    digest = sha256_hex(data)
    write_run_artifact(tracking_uri, record.run_id, statement_artifact(name, version), data)
    set_version_tag(tracking_uri, name, version, DIGEST_TAG, digest)
    return WrittenStatement(name, version, digest, data, False)


def now() -> datetime:
    return datetime.now(timezone.utc)


def dvc_dependencies(
    project: Project, stages: tuple[str, ...], hashes: dict[str, str], remote_url: str | None
) -> tuple[DvcDependency, ...]:
    """The DVC-cached inputs of `stages` made outside them (upstream outs, `.dvc` files), each
    named by its out's path at the hash the lock records (`hashes`: out path -> md5)."""
    made_here = {out.path for name in stages for out in project.stage(name).outs}
    found: dict[str, DvcDependency] = {}
    for name in stages:
        for dep in project.stage(name).deps:
            out = project.out_covering(dep)
            if out is None or not out.cached or out.path in made_here:
                continue
            md5 = hashes.get(out.path) or out.md5
            if md5 and out.path not in found:
                found[out.path] = DvcDependency(out.path, md5, remote_url)
    return tuple(found.values())


def params_digests(project: Project, stages: tuple[str, ...]) -> tuple[ParamsFile, ...]:
    """Each params file the stages read, with the digest of its values (as DVC reads them)."""
    files = sorted({path for name in stages for path in project.stage(name).params_files})
    if not files:
        return ()
    values = read_params(project)
    digests = []
    for path in files:
        if path == "params.yaml":
            own = {key: value for key, value in values.items() if ":" not in key}
        else:
            own = {key.removeprefix(f"{path}:"): value for key, value in values.items() if key.startswith(f"{path}:")}
        digests.append(ParamsFile(path, values_sha256(own)))
    return tuple(digests)


def model_out(
    project: Project, named_path: str | None, stages: tuple[str, ...], hashes: dict[str, str], remote_url: str | None
) -> DvcDependency | None:
    """The model's DVC out: the path that was named (--model-path, dvc.yaml `artifacts:`) when a
    cached out is exactly it, else the one cached plain out of the stages (a training stage's
    model); None when that is not clear-cut."""
    candidates = [out for name in stages for out in project.stage(name).outs if out.cached and out.kind == "out"]
    if named_path:
        candidates = [out for out in project.outs if out.cached and out.path == named_path]
    if len(candidates) != 1:
        return None
    md5 = hashes.get(candidates[0].path) or candidates[0].md5
    return DvcDependency(candidates[0].path, md5, remote_url) if md5 else None


@dataclass(frozen=True)
class StatementFiles:
    """The statement, and its subjects in `sha256sum` format, as files for the job's next steps."""

    statement: Path
    subject_checksums: Path


def save_statement_copy(written: WrittenStatement, project_root: Path) -> StatementFiles:
    """The statement as a file for the job's next steps (GitHub's attestation), with its subjects
    as a checksums file (`<sha256>  <name>` per line: attest-build-provenance's `subject-checksums`,
    and what `sha256sum -c` reads). In RUNNER_TEMP on Actions, else in the project's
    `.dvc/tmp/mlops` (ignored by git)."""
    runner_temp = os.environ.get("RUNNER_TEMP")
    folder = Path(runner_temp) / "mlops-provenance" if runner_temp else project_root / ".dvc" / "tmp" / "mlops"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{written.name}-v{written.version}.intoto.json"
    path.write_bytes(written.data)
    checksums = folder / f"{written.name}-v{written.version}.sha256"
    checksums.write_text(subject_checksums(written.data))
    return StatementFiles(path, checksums)


def subject_checksums(statement: bytes) -> str:
    """The statement's subjects in `sha256sum` format, one `<hex>  <name>` line each."""
    subjects = json.loads(statement)["subject"]
    return "".join(f"{subject['digest']['sha256']}  {subject['name']}\n" for subject in subjects)
