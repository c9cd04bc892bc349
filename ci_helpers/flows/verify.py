"""`verify MODEL[@ALIAS|/VERSION]`: is the model MLflow serves the one its provenance statement
describes? Reads only: the version, its statement (checked against the version's digest tag), the
files MLflow serves (hashed against the statement's subjects) and, with --against-remote, the DVC
remote's copy of the model out at the hash the statement records."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..adapters import github
from ..adapters.model_files import VersionRecord, downloaded_version, find_version, read_run_artifact
from ..adapters.redact import redact
from ..adapters.tracking import check_tracking_server
from ..errors import ConfigError, ValidationFailed
from ..lineage import parse_version_spec
from ..model_source import FORMAT_PLAIN
from ..provenance_statement import (
    DIGEST_TAG,
    DvcDependency,
    StatementView,
    read_statement,
    sha256_hex,
    statement_artifact,
    subjects_of,
)

DEFAULT_ALIAS = "production"  # `verify churn` verifies what a deploy of churn@production serves


@dataclass(frozen=True)
class Mismatch:
    file: str
    expected: str
    got: str

    @property
    def line(self) -> str:
        return f"{self.file}: expected {self.expected}, got {self.got}"


@dataclass(frozen=True)
class RemoteTarget:
    """Where --against-remote looks: the checkout's remote, resolved before anything is downloaded."""

    name: str
    endpoint: str
    url: str  # redacted
    out: DvcDependency


@dataclass(frozen=True)
class VerifyResult:
    name: str
    version: str
    statement_sha256: str
    files: int
    remote: str | None  # what --against-remote compared (the claim of the success line), None when not asked
    mismatches: tuple[Mismatch, ...]
    downloaded_to: str | None = None

    @property
    def passed(self) -> bool:
        return not self.mismatches

    @property
    def model_uri(self) -> str:
        """The version pinned by number: what a deploy loads, so that it serves what was verified."""
        return f"models:/{self.name}/{self.version}"


def _no_provenance(record: VersionRecord, why: str) -> ConfigError:
    return ConfigError(
        f"v{record.version} of '{record.name}' has no provenance statement ({why}): it was registered by hand or "
        "before ci-helpers wrote statements; re-register it through master-build or register-model"
    )


def _statement(tracking_uri: str, record: VersionRecord) -> tuple[StatementView | None, str, list[Mismatch]]:
    """(the stored statement read, or None when there is none to read; its tag; the mismatches)."""
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
    found = [] if got == tag else [Mismatch(artifact, f"sha256 {tag} (tag {DIGEST_TAG})", f"sha256 {got}")]
    try:
        view = read_statement(data)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        return None, tag, [*found, Mismatch(artifact, "an in-toto Statement v1 of SLSA provenance", str(error)[:200])]
    if (view.model_name, view.model_version) != (record.name, record.version):
        found.append(
            Mismatch(
                f"{artifact} (the model it describes)",
                f"{record.name}/{record.version}",
                f"{view.model_name}/{view.model_version}",
            )
        )
    return view, tag, found


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


def _remote_target(record: VersionRecord, view: StatementView, repo: Path, remote: str | None) -> RemoteTarget:
    from ..adapters import dvc

    if view.model_out is None:
        raise ConfigError(
            f"the statement of v{record.version} of '{record.name}' names no DVC out of the model, so there is no "
            "remote copy to compare; run verify without --against-remote"
        )
    name = dvc.resolve_remote(repo, remote)
    return RemoteTarget(name, dvc.remote_endpoint(repo, name), redact(dvc.remotes(repo).get(name, "")), view.model_out)


def _remote_url_mismatch(target: RemoteTarget) -> Mismatch | None:
    """The checkout's remote must be the one the statement records: a copy found elsewhere proves
    nothing about the remote the build pushed to. (A statement with no recorded remote: nothing to compare.)"""
    recorded = target.out.remote_url
    if recorded is None or redact(recorded) == target.url:
        return None
    return Mismatch(
        f"DVC remote of {target.out.path}",
        f"{redact(recorded)} (the statement's)",
        f"{target.url} (remote '{target.name}' of the checkout; pass --remote NAME for the statement's)",
    )


def _remote_mismatches(repo: Path, target: RemoteTarget, subjects: dict[str, str], same_bytes: bool) -> list[Mismatch]:
    """The DVC remote's copy of the model out against the lock hash the statement records: a
    directory's `.dir` manifest by the md5 of its bytes, then each file's content md5 and, when
    MLflow holds the out's own bytes (`same_bytes`), the subjects' sha256."""
    from ..adapters.remote_objects import remote_objects

    out, endpoint = target.out, target.endpoint
    found: list[Mismatch] = []
    with remote_objects(repo, target.name, endpoint) as objects:
        if out.is_dir:
            listing = objects.manifest_listing(out.md5)
            shown = f"{out.path} (.dir manifest)"
            if listing is None:
                return [Mismatch(shown, f"md5 {out.md5}", f"not on {endpoint}")]
            if listing.md5 != out.md5.removesuffix(".dir"):
                return [Mismatch(shown, f"md5 {out.md5}", f"a manifest whose bytes hash to md5 {listing.md5}")]
            files = [(f"{out.path}/{relpath}", relpath, md5) for relpath, md5 in listing.files]
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
    return found


def _check_download_folder(folder: Path | None) -> None:
    if folder is not None and folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError(f"--download-to {folder} exists and is not an empty folder; name a new or empty one")


def _keep(local: Path, folder: Path) -> None:
    """The verified files, copied out of the scratch folder before it goes."""
    folder.mkdir(parents=True, exist_ok=True)
    if local.is_file():
        shutil.copy2(local, folder / local.name)
    else:
        shutil.copytree(local, folder, dirs_exist_ok=True)


def verify_version(
    tracking_uri: str,
    model: str,
    against_remote: bool = False,
    repo: Path = Path("."),
    remote: str | None = None,
    download_to: Path | None = None,
) -> VerifyResult:
    """Check a version against its statement; the result lists every mismatch (none: it verified).
    Everything that can be refused is checked before the model is downloaded."""
    spec = parse_version_spec(model)
    _check_download_folder(download_to)
    check_tracking_server(tracking_uri)
    alias = spec.alias or (None if spec.version else DEFAULT_ALIAS)
    record = find_version(tracking_uri, spec.model, alias=alias, version=spec.version)
    view, tag, mismatches = _statement(tracking_uri, record)
    if view is None:  # no statement to compare the files with: its own mismatch says it all
        return VerifyResult(record.name, record.version, tag, 0, None, tuple(mismatches))
    target = _remote_target(record, view, repo, remote) if against_remote else None
    url_mismatch = _remote_url_mismatch(target) if target else None
    with downloaded_version(tracking_uri, record) as local:
        served = {subject.name: subject.sha256 for subject in subjects_of(local)}
        mismatches += compare_subjects(view.subjects, served)
        if target and url_mismatch:
            mismatches.append(url_mismatch)
        elif target:
            same_bytes = record.tags.get("mlops.model_format") == FORMAT_PLAIN
            mismatches += _remote_mismatches(repo, target, served, same_bytes)
        if download_to is not None and not mismatches:
            _keep(local, download_to)
    claim = f"{target.endpoint} holds {target.out.path} at md5 {target.out.md5}" if target else None
    kept = str(download_to) if download_to is not None and not mismatches else None
    return VerifyResult(record.name, record.version, tag, len(served), claim, tuple(mismatches), kept)


def verify_and_report(
    tracking_uri: str,
    model: str,
    against_remote: bool = False,
    repo: Path = Path("."),
    remote: str | None = None,
    download_to: Path | None = None,
    as_json: bool = False,
) -> VerifyResult:
    """verify_version, said in one line (or JSON); the pinned `model-uri` as a step output when it
    verified; ValidationFailed (exit 1) naming each mismatch."""
    result = verify_version(tracking_uri, model, against_remote, repo, remote, download_to)
    where = f"{result.model_uri} ({model})"
    if not result.passed:
        raise ValidationFailed(
            f"{where} does not match its provenance statement: " + "; ".join(m.line for m in result.mismatches)
        )
    github.set_outputs({"model-uri": result.model_uri, "model-version": result.version})
    if as_json:
        facts = {
            "verified": True,
            "model_uri": result.model_uri,
            "model": result.name,
            "version": result.version,
            "statement_sha256": result.statement_sha256,
            "files": result.files,
            "remote": result.remote,
            "downloaded_to": result.downloaded_to,
        }
        sys.stdout.write(json.dumps(facts, indent=2) + "\n")
        return result
    remote_note = f"; {result.remote}" if result.remote else ""
    kept = f"; the verified files are in {result.downloaded_to}" if result.downloaded_to else ""
    sys.stdout.write(
        f"verified {where}: its {result.files} files match the statement (sha256 {result.statement_sha256}), "
        f"which matches the version's {DIGEST_TAG} tag{remote_note}{kept}\n"
    )
    return result
