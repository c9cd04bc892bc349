"""`verify MODEL[@ALIAS|/VERSION]`: is the model MLflow serves the one its provenance statement
describes? Reads only: the version, its statement (checked against the version's digest tag), the
files MLflow serves (hashed against the statement's subjects) and, with --against-remote, the DVC
remote's copy of the model out at the hash the statement records."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..adapters.model_files import VersionRecord, downloaded_version, find_version, read_run_artifact
from ..adapters.tracking import check_tracking_server
from ..errors import ConfigError, ValidationFailed
from ..provenance_statement import (
    DIGEST_TAG,
    DvcDependency,
    StatementView,
    read_statement,
    sha256_hex,
    statement_artifact,
    subjects_of,
)
from ..registry_names import validate_alias, validate_model_name

_REF = re.compile(r"^(?P<name>[^@]+?)(?:@(?P<alias>[^@/]+)|/(?P<version>\d+))?$")
PLAIN_FORMAT = "plain-artifacts"  # model_source.FORMAT_PLAIN: MLflow holds the DVC out's own bytes


@dataclass(frozen=True)
class ModelRef:
    name: str
    alias: str | None
    version: str | None

    def __str__(self) -> str:
        return f"{self.name}@{self.alias}" if self.alias else f"{self.name}/{self.version}"


@dataclass(frozen=True)
class Mismatch:
    file: str
    expected: str
    got: str

    @property
    def line(self) -> str:
        return f"{self.file}: expected {self.expected}, got {self.got}"


@dataclass(frozen=True)
class VerifyResult:
    name: str
    version: str
    statement_sha256: str
    files: int
    remote: str | None  # what --against-remote compared, None when not asked
    mismatches: tuple[Mismatch, ...]

    @property
    def passed(self) -> bool:
        return not self.mismatches


def parse_model_ref(text: str) -> ModelRef:
    """`churn@production`, `churn/3`, or `churn` (its `production` alias)."""
    match = _REF.match(text.strip())
    if not match:
        raise ConfigError(
            f"invalid model '{text}': write MODEL@ALIAS or MODEL/VERSION, e.g. churn@production or churn/3"
        )
    name = validate_model_name(match["name"])
    if match["version"]:
        return ModelRef(name, None, match["version"])
    return ModelRef(name, validate_alias(match["alias"] or "production"), None)


def _no_provenance(record: VersionRecord, why: str) -> ConfigError:
    return ConfigError(
        f"v{record.version} of '{record.name}' has no provenance statement ({why}): it was registered by hand or "
        "before ci-helpers wrote statements; re-register it through master-build or register-model"
    )


def _statement(tracking_uri: str, record: VersionRecord) -> tuple[bytes | None, str, list[Mismatch]]:
    """(the stored statement, its tag, the mismatches between them)."""
    tag = record.tags.get(DIGEST_TAG)
    if not tag:
        raise _no_provenance(record, f"no {DIGEST_TAG} tag")
    if not record.run_id:
        raise _no_provenance(record, "no MLflow run")
    artifact = statement_artifact(record.name, record.version)
    data = read_run_artifact(tracking_uri, record.run_id, artifact)
    if data is None:
        return None, tag, [Mismatch(artifact, f"sha256 {tag}", f"no such artifact in run {record.run_id}")]
    got = sha256_hex(data)
    return (
        data,
        tag,
        [] if got == tag else [Mismatch(artifact, f"sha256 {tag} (tag {DIGEST_TAG})", f"sha256 {got}")],
    )


def compare_subjects(expected: dict[str, str], served: dict[str, str]) -> list[Mismatch]:
    """Each file the statement names against the file MLflow serves; one missing or extra is a mismatch too."""
    found = []
    for name in sorted(set(expected) | set(served)):
        want, got = expected.get(name), served.get(name)
        if want != got:
            found.append(
                Mismatch(name, f"sha256 {want}" if want else "no such file", f"sha256 {got}" if got else "missing")
            )
    return found


def _remote_mismatches(
    repo: Path, remote: str | None, out: DvcDependency, subjects: dict[str, str], same_bytes: bool
) -> tuple[str, list[Mismatch]]:
    """The DVC remote's copy of the model out against the lock hash the statement records (each
    file's content md5) and, when MLflow holds the out's own bytes (`same_bytes`), against the
    subjects' sha256."""
    from ..adapters import dvc
    from ..adapters.remote_objects import remote_objects

    name = dvc.resolve_remote(repo, remote)
    endpoint = dvc.remote_endpoint(repo, name)
    found: list[Mismatch] = []
    with remote_objects(repo, name, endpoint) as objects:
        if out.is_dir:
            entries = objects.manifest_entries(out.md5)
            if entries is None:
                return endpoint, [Mismatch(f"{out.path} (.dir manifest)", f"md5 {out.md5}", f"not on {endpoint}")]
            files = [(f"{out.path}/{relpath}", relpath, md5) for relpath, md5 in entries]
        else:
            files = [(out.path, PurePosixPath(out.path).name, out.md5)]
        for shown, subject, md5 in files:
            digests = objects.object_digests(md5)
            if digests is None:
                found.append(Mismatch(shown, f"md5 {md5}", f"not on {endpoint}"))
            elif digests[0] != md5:
                found.append(Mismatch(shown, f"md5 {md5}", f"md5 {digests[0]} on {endpoint}"))
            elif same_bytes and subjects.get(subject) != digests[1]:
                found.append(
                    Mismatch(shown, f"sha256 {subjects.get(subject)} (MLflow's {subject})", f"sha256 {digests[1]}")
                )
    return endpoint, found


def verify_version(
    tracking_uri: str, model: str, against_remote: bool = False, repo: Path = Path("."), remote: str | None = None
) -> VerifyResult:
    """Check a version against its statement; the result lists every mismatch (none: it verified)."""
    ref = parse_model_ref(model)
    check_tracking_server(tracking_uri)
    record = find_version(tracking_uri, ref.name, alias=ref.alias, version=ref.version)
    data, tag, mismatches = _statement(tracking_uri, record)
    view = StatementView({}, None)
    if data is not None:
        try:
            view = read_statement(data)
        except (ValueError, KeyError, TypeError) as error:
            mismatches.append(
                Mismatch(
                    statement_artifact(record.name, record.version),
                    "an in-toto Statement v1 of SLSA provenance",
                    str(error)[:200],
                )
            )
    with downloaded_version(tracking_uri, record) as local:
        served = {subject.name: subject.sha256 for subject in subjects_of(local)}
    mismatches += compare_subjects(view.subjects, served)
    endpoint = None
    if against_remote:
        if view.model_out is None:
            raise ConfigError(
                f"the statement of v{record.version} of '{record.name}' names no DVC out of the model, so there is no "
                "remote copy to compare; run verify without --against-remote"
            )
        same_bytes = record.tags.get("mlops.model_format") == PLAIN_FORMAT
        endpoint, found = _remote_mismatches(repo, remote, view.model_out, served, same_bytes)
        mismatches += found
    return VerifyResult(record.name, record.version, tag, len(served), endpoint, tuple(mismatches))


def verify_and_report(
    tracking_uri: str, model: str, against_remote: bool = False, repo: Path = Path("."), remote: str | None = None
) -> VerifyResult:
    """verify_version, said in one line; ValidationFailed (exit 1) naming each mismatch."""
    result = verify_version(tracking_uri, model, against_remote, repo, remote)
    where = f"'{result.name}' v{result.version} ({model})"
    if not result.passed:
        raise ValidationFailed(
            f"{where} does not match its provenance statement: " + "; ".join(m.line for m in result.mismatches)
        )
    remote_note = f"; the DVC remote's copy at {result.remote} is the same model" if result.remote else ""
    sys.stdout.write(
        f"verified {where}: its {result.files} files match the statement (sha256 {result.statement_sha256}), "
        f"which matches the version's {DIGEST_TAG} tag{remote_note}\n"
    )
    return result
