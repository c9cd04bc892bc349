"""The provenance of one registered model version as an in-toto Statement v1 with an SLSA
Provenance v1 predicate: which files MLflow serves (the subjects), what built them (the command,
its stages, the gate), from what (the git commit, the DVC-tracked inputs at their lock hashes,
the params), where and when (the CI run). Pure: typed inputs in, the statement's dict out.

The statement holds no secret: every URL in it is redacted (credentials stripped) by the caller's
inputs being passed through `redact`, here, once more.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .adapters.redact import redact

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
# Versioned: a change to what externalParameters or resolvedDependencies mean is a new version.
BUILD_TYPE = "https://github.com/org/mlops-actions/provenance/model-build/v1"
# The builder outside any CI: a URI (SLSA's builder.id is one) of this project's, like BUILD_TYPE.
LOCAL_BUILDER = "https://github.com/org/mlops-actions/builders/local@v1"
# in-toto DigestSet keys name a hash of the resource's OWN bytes. These two are not that, so they
# carry custom keys of this project's: the sha256 of a params file's values as canonical JSON (not
# of the file), and the md5 of a DVC directory's `.dir` manifest (not of the directory).
PARAMS_DIGEST = "dvcParamsSha256"
DIR_MANIFEST_DIGEST = "dvcDirMd5"
STATEMENT_FILE = "statement.intoto.json"
# MLflow's registry writes this file into a logged model's artifacts at each registration (the
# name and version it was registered as): a second version of the same logged model rewrites it.
# Bookkeeping, not the model: left out of the subjects.
REGISTRY_BOOKKEEPING = frozenset({"registered_model_meta"})
DIGEST_TAG = "mlops.provenance_sha256"  # on the version: the sha256 of the statement's bytes
MODEL_OUT_ROLE = "dvc-model-out"  # the byproduct naming the model's DVC out, for --against-remote


@dataclass(frozen=True)
class Subject:
    """One file of the registered model, named relative to the model's root."""

    name: str
    sha256: str


@dataclass(frozen=True)
class GitSource:
    url: str  # the repository, credentials stripped
    commit: str


@dataclass(frozen=True)
class DvcDependency:
    """A DVC-tracked input (or the model's own out) at the hash its lock file records."""

    path: str
    md5: str  # as DVC records it: `<hex>` for a file, `<hex>.dir` for a directory
    remote_url: str | None  # where the remote keeps it, credentials stripped

    @property
    def is_dir(self) -> bool:
        return self.md5.endswith(".dir")


@dataclass(frozen=True)
class ParamsFile:
    path: str
    sha256: str  # of its values, as canonical JSON


@dataclass(frozen=True)
class BuildParameters:
    """What the user asked for: externalParameters."""

    command: str  # master-build | register-model | airflow-promote
    model_name: str
    alias: str | None
    stages: tuple[str, ...] = ()
    thresholds: tuple[str, ...] = ()
    max_regressions: tuple[str, ...] = ()
    model_source: str | None = None  # the MLflow URI that was registered


@dataclass(frozen=True)
class RunContext:
    """runDetails: who built it, which run, when."""

    builder_id: str
    invocation_id: str | None
    started_on: datetime | None
    finished_on: datetime
    tracking_uri: str
    run_id: str | None


@dataclass(frozen=True)
class StatementInputs:
    subjects: tuple[Subject, ...]
    parameters: BuildParameters
    run: RunContext
    tool_version: str
    git: GitSource | None = None
    dependencies: tuple[DvcDependency, ...] = ()
    params: tuple[ParamsFile, ...] = ()
    model_out: DvcDependency | None = None  # the model's DVC out, when one is known
    model_version: str | None = None


def statement_artifact(name: str, version: str) -> str:
    """Where the version's statement lives in its MLflow run: one folder per version, since two
    versions (master-build's, then register-model's of the same run) can share a run."""
    return f"provenance/{name}/v{version}/{STATEMENT_FILE}"


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _hex_of(md5: str) -> str:
    return md5.removesuffix(".dir")


def _dvc_descriptor(dependency: DvcDependency, role: str | None = None) -> dict:
    annotations: dict[str, object] = {"dvcHash": dependency.md5, "type": "directory" if dependency.is_dir else "file"}
    if dependency.remote_url:
        annotations["dvcRemote"] = redact(dependency.remote_url)
    if role:
        annotations["role"] = role
    key = DIR_MANIFEST_DIGEST if dependency.is_dir else "md5"
    return {"name": dependency.path, "digest": {key: _hex_of(dependency.md5)}, "annotations": annotations}


_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>[^:/]+):(?P<path>(?!//).+)$")


def git_uri(url: str) -> str:
    """SLSA's form for a git repository, `git+<url>`, with no userinfo, query or fragment (stripped,
    not masked: a credential has no place in it). scp-style `git@host:o/r.git` becomes
    `git+ssh://host/o/r.git` (the login is userinfo too); a local path `git+file:///abs/path`."""
    text = url.removeprefix("git+")
    scp = _SCP_LIKE.match(text) if "://" not in text else None
    if scp and not (len(scp["host"]) == 1 and text[1:3] in (":\\", ":/")):  # not a Windows drive
        return redact(f"git+ssh://{scp['host']}/{scp['path'].lstrip('/')}")
    if "://" not in text:
        return redact("git+" + Path(text).absolute().as_uri())
    parts = urlsplit(text)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return redact("git+" + urlunsplit((parts.scheme, netloc, parts.path, "", "")))


def build_statement(inputs: StatementInputs) -> dict:
    """The in-toto Statement v1 (SLSA Provenance v1 predicate) of one model version."""
    parameters = inputs.parameters
    external: dict[str, object] = {"command": parameters.command, "model": {"name": parameters.model_name}}
    if parameters.alias:
        external["model"]["alias"] = parameters.alias  # type: ignore[index]
    if inputs.model_version:
        external["model"]["version"] = inputs.model_version  # type: ignore[index]
    if parameters.model_source:
        external["model"]["source"] = redact(parameters.model_source)  # type: ignore[index]
    if parameters.stages:
        external["stages"] = list(parameters.stages)
    if parameters.thresholds or parameters.max_regressions:
        external["gate"] = {
            "thresholds": list(parameters.thresholds),
            "maxRegressions": list(parameters.max_regressions),
        }

    resolved: list[dict] = []
    if inputs.git:
        resolved.append({"uri": git_uri(inputs.git.url), "digest": {"gitCommit": inputs.git.commit}})
    resolved += [_dvc_descriptor(dependency) for dependency in inputs.dependencies]
    resolved += [
        {"name": params.path, "digest": {PARAMS_DIGEST: params.sha256}, "annotations": {"type": "params"}}
        for params in inputs.params
    ]

    run = inputs.run
    metadata: dict[str, str] = {"finishedOn": _timestamp(run.finished_on)}
    if run.invocation_id:
        metadata["invocationId"] = redact(run.invocation_id)
    if run.started_on:
        metadata["startedOn"] = _timestamp(run.started_on)
    byproducts: list[dict] = []
    if run.run_id:
        byproducts.append(
            {
                "name": "mlflow-run",
                "uri": f"runs:/{run.run_id}",
                "annotations": {"trackingUri": redact(run.tracking_uri), "runId": run.run_id},
            }
        )
    if inputs.model_out:
        byproducts.append(_dvc_descriptor(inputs.model_out, MODEL_OUT_ROLE))

    build_definition: dict[str, object] = {
        "buildType": BUILD_TYPE,
        "externalParameters": external,
        "internalParameters": {"tool": "mlops-actions", "version": inputs.tool_version},
        "resolvedDependencies": resolved,
    }
    run_details: dict[str, object] = {
        "builder": {"id": redact(run.builder_id)},
        "metadata": metadata,
        "byproducts": byproducts,
    }
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": s.name, "digest": {"sha256": s.sha256}} for s in inputs.subjects],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"buildDefinition": build_definition, "runDetails": run_details},
    }


def statement_bytes(statement: Mapping) -> bytes:
    """The bytes stored and digested: sorted keys, so the same statement has the same digest."""
    return (json.dumps(statement, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def values_sha256(values: object) -> str:
    """The digest of a params file's values (canonical JSON), whatever its formatting or comments."""
    return sha256_hex(json.dumps(values, sort_keys=True, default=str, separators=(",", ":")).encode())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def subjects_of(root: Path) -> tuple[Subject, ...]:
    """Every file under `root` (a model folder, or one file), named relative to it, sorted."""
    if root.is_file():
        return (Subject(root.name, file_sha256(root)),)
    files = sorted(path for path in root.rglob("*") if path.is_file())
    names = [(path, path.relative_to(root).as_posix()) for path in files]
    return tuple(Subject(name, file_sha256(path)) for path, name in names if name not in REGISTRY_BOOKKEEPING)


def builder_id(airflow_dag: str | None = None) -> str:
    """The workflow file at its ref on GitHub, the pipeline on GitLab, the DAG on Airflow, else
    LOCAL_BUILDER."""
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    workflow_ref = os.environ.get("GITHUB_WORKFLOW_REF")
    if workflow_ref:
        return f"{server}/{workflow_ref}"
    pipeline = os.environ.get("CI_PIPELINE_URL")
    if pipeline:
        return pipeline
    if airflow_dag:
        return f"airflow://dags/{airflow_dag}"
    return LOCAL_BUILDER


def invocation_id() -> str | None:
    """The CI run's page, on GitHub down to the attempt (a re-run of a job is another invocation)."""
    from .provenance import ci_run_url

    url = ci_run_url()
    attempt = os.environ.get("GITHUB_RUN_ATTEMPT", "")
    if url and os.environ.get("GITHUB_RUN_ID") and attempt.isdigit():
        return f"{url}/attempts/{attempt}"
    return url


def tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlops-actions")
    except PackageNotFoundError:  # run from a source tree
        return "unknown"


@dataclass(frozen=True)
class StatementView:
    """What verify reads back from a stored statement."""

    subjects: dict[str, str]  # name -> sha256
    model_out: DvcDependency | None
    model_name: str | None = None
    model_version: str | None = None


def read_statement(data: bytes) -> StatementView:
    """Parse a stored statement; ValueError when it is not one of ours."""
    statement = json.loads(data)
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise ValueError("not an in-toto Statement v1")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise ValueError("not an SLSA Provenance v1 statement")
    subjects = {str(s["name"]): str(s["digest"]["sha256"]) for s in statement.get("subject") or []}
    model_out = None
    for item in ((statement.get("predicate") or {}).get("runDetails") or {}).get("byproducts") or []:
        annotations = item.get("annotations") or {}
        if annotations.get("role") == MODEL_OUT_ROLE:
            model_out = DvcDependency(str(item["name"]), str(annotations["dvcHash"]), annotations.get("dvcRemote"))
    model = ((statement.get("predicate") or {}).get("buildDefinition") or {}).get("externalParameters", {}).get("model")
    model = model if isinstance(model, dict) else {}
    name, version = model.get("name"), model.get("version")
    return StatementView(subjects, model_out, str(name) if name else None, str(version) if version else None)
