"""DVC through its CLI (``--json`` where it exists), via the shared runner."""

from __future__ import annotations

import configparser
import json
import os
import re
import sys
from pathlib import Path

import yaml

from .errors import ConfigError
from .runner import CommandError, run


def dvc_executable() -> str:
    """The dvc installed beside ci_helpers (a private venv needs not be on PATH), else PATH's."""
    beside = Path(sys.executable).with_name("dvc")
    return str(beside) if beside.is_file() else "dvc"


def dvc(repo: Path, *args: str, stream: bool = False, retry: bool = False, endpoint: str | None = None) -> str:
    return run([dvc_executable(), *args], cwd=repo, stream=stream, retry=retry, endpoint=endpoint).stdout


def require_dvc_repo(repo: Path) -> None:
    if not (repo / ".dvc").is_dir():
        raise ConfigError(f"{repo} is not a DVC project (no .dvc/ folder); run `dvc init` or pass the project root to --repo")


def _project_config(repo: Path) -> configparser.ConfigParser:
    """The repo's .dvc/config and .dvc/config.local, read in-process (one dvc call saved per query)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read([repo / ".dvc" / "config", repo / ".dvc" / "config.local"])
    return parser


def _remote_sections(parser: configparser.ConfigParser) -> dict[str, configparser.SectionProxy]:
    sections = {}
    for section in parser.sections():
        match = re.fullmatch(r"""\s*['"]?remote\s+"(?P<name>[^"]+)"['"]?\s*""", section)
        if match:
            sections[match["name"]] = parser[section]
    return sections


def remotes(repo: Path) -> dict[str, str]:
    """Configured remote names and their URLs (project config; else DVC's merged config)."""
    found = {name: section.get("url", "") for name, section in _remote_sections(_project_config(repo)).items()}
    if found:
        return found
    for line in dvc(repo, "remote", "list").splitlines():
        name, _, url = line.strip().partition("\t")
        if name:
            found[name.strip()] = url.strip()
    return found


def default_remote(repo: Path) -> str | None:
    parser = _project_config(repo)
    if parser.has_option("core", "remote"):
        return parser.get("core", "remote").strip() or None
    try:
        return dvc(repo, "remote", "default").strip() or None
    except CommandError:
        return None


def resolve_remote(repo: Path, remote: str | None) -> str:
    """The remote to use; ConfigError when it is unknown or none is configured."""
    known = remotes(repo)
    if remote:
        if remote not in known:
            names = ", ".join(sorted(known)) or "none"
            raise ConfigError(
                f"DVC remote '{remote}' is not configured (known: {names}); pass one of them to --remote or add it with `dvc remote add`"
            )
        return remote
    chosen = default_remote(repo)
    if not chosen:
        raise ConfigError(
            "no DVC remote is configured; add one with `dvc remote add -d NAME URL` or pass --remote"
        )
    return chosen


def remote_endpoint(repo: Path, remote: str) -> str:
    """A human description of where a remote lives: its URL, plus the S3 endpoint when set."""
    section = _remote_sections(_project_config(repo)).get(remote)
    url = section.get("url", "?") if section is not None else remotes(repo).get(remote, "?")
    endpoint = (section.get("endpointurl") if section is not None else None) or os.environ.get(
        "AWS_ENDPOINT_URL_S3"
    ) or os.environ.get("AWS_ENDPOINT_URL")
    return f"DVC remote '{remote}' ({url}" + (f" at {endpoint})" if endpoint else ")")


def stage_names(repo: Path) -> list[str]:
    """Every stage of the project's dvc.yaml, foreach/matrix expanded."""
    path = repo / "dvc.yaml"
    if not path.is_file():
        raise ConfigError(f"{repo} has no dvc.yaml; add your pipeline stages there or pass the project root to --repo")
    try:
        spec = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"dvc.yaml is not valid YAML ({str(error).splitlines()[0]}); fix its syntax") from None
    stages = spec.get("stages") or {}
    if not any(isinstance(body, dict) and ({"foreach", "matrix"} & body.keys()) for body in stages.values()):
        return list(stages)
    try:  # foreach/matrix stages: let DVC expand the names
        out = dvc(repo, "stage", "list", "--name-only", "--fail")
    except CommandError as error:
        raise ConfigError(f"dvc.yaml cannot be read: {error}") from None
    return [line.strip() for line in out.splitlines() if line.strip()]


def require_stage(repo: Path, stage: str) -> None:
    names = stage_names(repo)
    if stage not in names:
        raise ConfigError(
            f"unknown DVC stage '{stage}' (stages: {', '.join(names) or 'none'}); pass one of them to --eval-stage"
        )


def load_lock(repo: Path) -> dict:
    """The parsed dvc.lock stages (empty when there is no lock file)."""
    path = repo / "dvc.lock"
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    return data.get("stages", {})


def _lock_paths(entries: list[dict] | None) -> list[str]:
    return [entry["path"] for entry in entries or [] if "path" in entry]


def lock_outputs(lock: dict) -> dict[str, dict]:
    """Every output in dvc.lock, path -> lock entry (md5, size...)."""
    return {entry["path"]: entry for stage in lock.values() for entry in stage.get("outs", []) or []}


def dvc_file_outputs(repo: Path) -> list[str]:
    """Paths tracked by committed .dvc files (`dvc add`), relative to the project root."""
    listed = run(["git", "ls-files", "-z", "--", "*.dvc"], cwd=repo).stdout
    found = []
    for name in filter(None, listed.split("\0")):
        data = yaml.safe_load((repo / name).read_text()) or {}
        base = Path(name).parent
        found += [str(base / out["path"]) for out in data.get("outs", []) if "path" in out]
    return found


def stage_dependencies(lock: dict, stage: str) -> list[str]:
    """The data dependencies of `stage` that DVC tracks (outputs of stages or of .dvc files)."""
    if stage not in lock:
        raise ConfigError(f"stage '{stage}' has no entry in dvc.lock; run `dvc repro {stage}` and commit dvc.lock")
    return _lock_paths(lock[stage].get("deps"))


def _declared(repo: Path, stage: str, *sections: str) -> list[str]:
    spec = yaml.safe_load((repo / "dvc.yaml").read_text()) or {}
    body = spec.get("stages", {}).get(stage) or {}
    return [next(iter(item)) if isinstance(item, dict) else str(item)
            for section in sections for item in body.get(section, []) or []]


def stage_metrics_files(repo: Path, stage: str) -> list[str]:
    """The metrics files a stage declares in dvc.yaml."""
    return _declared(repo, stage, "metrics")


def stage_output_paths(repo: Path, stage: str) -> list[str]:
    """Everything a stage writes: outs, metrics and plots."""
    return _declared(repo, stage, "outs", "metrics", "plots")


def cloud_status(repo: Path, remote: str, endpoint: str) -> dict[str, str]:
    """`dvc status --cloud --json`: path -> new|deleted|missing|modified for objects not in sync."""
    out = dvc(repo, "status", "--cloud", "--json", "--remote", remote, retry=True, endpoint=endpoint)
    return json.loads(out or "{}")


def pipeline_status(repo: Path) -> dict[str, list]:
    """`dvc status --json`: stage -> list of changes against dvc.lock."""
    return json.loads(dvc(repo, "status", "--json") or "{}")


def pull(repo: Path, targets: list[str], remote: str, endpoint: str) -> None:
    """Pull just `targets` from `remote`, showing DVC's own progress."""
    dvc(repo, "pull", "--remote", remote, *targets, stream=True, retry=True, endpoint=endpoint)


def repro(repo: Path, targets: list[str], flags: list[str], env: dict[str, str] | None = None) -> None:
    """`dvc repro FLAGS TARGETS`, showing the stages' own output."""
    run([dvc_executable(), "repro", *flags, *targets], cwd=repo, env=env, stream=True)


def push(repo: Path, targets: list[str], remote: str, endpoint: str, run_cache: bool = False) -> None:
    """Push `targets` (and optionally the run cache) to `remote`, with retries."""
    extra = ["--run-cache"] if run_cache else []
    dvc(repo, "push", "--remote", remote, *extra, *targets, stream=True, retry=True, endpoint=endpoint)


def repro_single(repo: Path, stage: str) -> None:
    """Re-run exactly one stage, unconditionally, on what is in the workspace."""
    dvc(repo, "repro", "--force", "--single-item", stage, stream=True)
