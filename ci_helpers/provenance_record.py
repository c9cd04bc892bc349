"""Write a registered version's provenance statement: gather what the statement names from the
project model, hash the files MLflow serves, store the statement in the version's run, then tag
the version with its digest (artifact first, tag last: a crash between them leaves no tag, and a
re-run writes both)."""

from __future__ import annotations

import json
import os
import sys
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
from .errors import ValidationFailed
from .project import Project, read_params
from .provenance_statement import (
    DIGEST_TAG,
    BuildParameters,
    DvcDependency,
    GitSource,
    ParamsFile,
    RunContext,
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


@dataclass(frozen=True)
class StatementFacts:
    """What a command knows of the version it registered; the files MLflow serves and the run's
    start are read when the statement is written."""

    parameters: BuildParameters
    builder_id: str
    invocation_id: str | None
    tracking_uri: str
    run_id: str | None
    model_version: str
    tool_version: str
    git: GitSource | None = None
    dependencies: tuple[DvcDependency, ...] = ()
    params: tuple[ParamsFile, ...] = ()
    model_out: DvcDependency | None = None


def statement_inputs(
    facts: StatementFacts, subjects: tuple[Subject, ...], started_on: datetime | None
) -> StatementInputs:
    run = RunContext(facts.builder_id, facts.invocation_id, started_on, now(), facts.tracking_uri, facts.run_id)
    return StatementInputs(
        subjects,
        facts.parameters,
        run,
        facts.tool_version,
        facts.git,
        facts.dependencies,
        facts.params,
        facts.model_out,
        facts.model_version,
    )


def attach_statement(tracking_uri: str, name: str, version: str, facts: StatementFacts) -> WrittenStatement | None:
    """Give `name/version` its statement, stored at statement_artifact() in its run, its sha256 in
    the DIGEST_TAG tag. A version that already holds a statement matching its tag keeps it; one
    whose tag and stored statement disagree is refused (ValidationFailed): it was certified once
    and changed since, and writing a new statement would certify the change. Only a version with no
    tag (a crash between the artifact and the tag) gets one written. None (with a warning) for a
    version with no run to hold it."""
    from .provenance_statement import build_statement

    record = find_version(tracking_uri, name, version=version)
    if not record.run_id:
        sys.stderr.write(
            f"mlops: warning: v{version} of '{name}' has no MLflow run to hold its provenance statement; "
            "register it from a run (--run-id) to have one\n"
        )
        return None
    recorded = record.tags.get(DIGEST_TAG)
    artifact = statement_artifact(name, version)
    if recorded:
        existing = read_run_artifact(tracking_uri, record.run_id, artifact)
        got = sha256_hex(existing) if existing is not None else None
        if existing is not None and got == recorded:
            return WrittenStatement(name, version, recorded, existing, True)
        raise ValidationFailed(
            f"v{version} of '{name}' has {DIGEST_TAG} {recorded}, but its stored statement {artifact} "
            f"{'has sha256 ' + got if got else 'is missing'}: it was changed after it was certified, and a new "
            f"statement would certify the change; not written. Check it with `ci-helpers verify {name}/{version}`"
        )
    with downloaded_version(tracking_uri, record) as local:
        subjects = subjects_of(local)
    data = statement_bytes(
        build_statement(statement_inputs(facts, subjects, run_started_on(tracking_uri, record.run_id)))
    )
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
