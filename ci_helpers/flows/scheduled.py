"""The scheduled pipeline (what the Airflow integration runs): reproduce, gate, then promote.

Three steps, one per scheduler task. Each takes and returns a small frozen dataclass that travels
between tasks as JSON (Airflow's XCom):

- `reproduce_pipeline`: `dvc repro` inside an MLflow run this process owns and hands to the
  training script; every metric the project declares is then logged to that run (sanitised as the
  CLI does). When the pipeline is up to date and its outputs are the ones this workspace last
  promoted, nothing runs at all: no stage, no MLflow run, no registry call.
- `gate_pipeline`: the metrics against thresholds and a baseline, taken in this order: the metrics
  of the run behind `baseline_alias`'s version; else the project's metrics at `baseline_ref`, read
  as the CLI reads baselines; else none, which fails every regression rule unless allowed.
- `promote_pipeline_model`: registers the model (the same version again when the outputs did
  not change), moves the alias, and remembers what it promoted for the next scheduled run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .. import model_source
from ..adapters import dvc, git
from ..adapters.model_files import read_run_artifact
from ..adapters.registry import (
    RegisteredVersion,
    move_alias_in_commit_order,
    register_version,
    resolve_alias,
    run_model,
    set_alias,
    tag_version,
    version_metrics,
    version_tags,
    version_with_tag,
)
from ..adapters.tracking import (
    TrackedRun,
    finish_run,
    open_run,
    resolve_tracking_uri,
    run_environment,
    runs_with_tag,
)
from ..baseline import read_baseline
from ..commit_order import ancestry
from ..errors import ConfigError
from ..gate import Check, evaluate_gate, parse_gate_rules
from ..lock_commit import GitIdentity, LockCommitResult, commit_lock_file
from ..metrics import Metrics, MetricValue, read_metrics_files
from ..pipeline_inputs import INPUTS_TAG, import_stages
from ..pipeline_run import OUTPUTS_TAG, SCHEDULED_KIND, STAGE_RAN, PipelineRun, json_metrics, outputs_fingerprint
from ..project import Project, load_project, read_pipeline_status
from ..project_source import ProjectSource
from ..provenance import project_name
from ..provenance_record import StatementFacts, attach_statement, dvc_dependencies, model_out, params_digests
from ..provenance_statement import BuildParameters, GitSource, builder_id, tool_version
from ..rebuild_plan import plan_rebuild
from ..report.common import check_json
from ..report.scheduled import gate_report_lines
from ..run_lock import LOCK_ARTIFACT, LOCK_COMMIT_TAG, OUT_MD5_PREFIX, restore_lock_from_run

log = logging.getLogger(__name__)

DEFAULT_LOCK_IDENTITY = GitIdentity("mlops-actions (airflow)", "mlops-airflow@users.noreply.invalid")


@dataclass(frozen=True)
class ScheduledGate:
    """The gate's verdict on a pipeline run, with the table the CLI's report shows."""

    verdict: str  # passed | failed | unchanged
    metrics: Metrics
    baseline: Metrics
    baseline_source: str
    checks: tuple[Check, ...] = ()

    @property
    def passed(self) -> bool:
        return self.verdict != "failed"

    @property
    def failing(self) -> list[dict]:
        return [check_json(check) for check in self.checks if not check.passed]

    @property
    def report(self) -> str:
        return "\n".join(
            gate_report_lines(self.verdict, self.metrics, self.baseline, self.baseline_source, self.checks)
        )

    def as_xcom(self) -> dict:
        return {
            "verdict": self.verdict,
            "passed": self.passed,
            "metrics": json_metrics(self.metrics),
            "baseline": json_metrics(self.baseline),
            "baseline_source": self.baseline_source,
            "checks": [check_json(check) for check in self.checks],
            "failing": self.failing,
            "report": self.report,
        }


@dataclass(frozen=True)
class Promotion:
    model_name: str
    version: str
    model_uri: str
    alias: str
    previous: str | None
    reused: bool
    unchanged: bool = False
    lock_commit: str | None = None  # the commit that holds the run's dvc.lock (commit_lock)
    superseded_by: str | None = None  # a newer commit owns the branch's lock: the alias was left

    def as_xcom(self) -> dict:
        return asdict(self)


# -- what this workspace last promoted --------------------------------------------------------


def _promoted_file(root: Path, model_name: str, alias: str, tracking_uri: str) -> Path:
    key = hashlib.sha256(json.dumps([model_name, alias, tracking_uri]).encode()).hexdigest()[:16]
    return root / ".dvc" / "tmp" / "mlops" / f"promoted-{key}.json"


def _promoted_version(root: Path, model_name: str, alias: str, tracking_uri: str, fingerprint: str) -> str | None:
    """The version this workspace promoted to `alias` from these very outputs, if it did."""
    try:
        record = json.loads(_promoted_file(root, model_name, alias, tracking_uri).read_text())
    except (OSError, ValueError):
        return None
    return str(record["version"]) if record.get("fingerprint") == fingerprint and record.get("version") else None


def _remember_promotion(root: Path, promotion: Promotion, tracking_uri: str, fingerprint: str) -> None:
    path = _promoted_file(root, promotion.model_name, promotion.alias, tracking_uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"fingerprint": fingerprint, "version": promotion.version}) + "\n")


# -- the three steps ----------------------------------------------------------------------------


def _head_commit(root: Path) -> str:
    try:
        return git.head_commit(root)
    except Exception:  # a workspace that is not a git checkout still reproduces
        return "unknown"


def reproduce_pipeline(
    project_dir: str | Path,
    *,
    model_name: str | None = None,
    alias: str = "staging",
    force_stages: tuple[str, ...] = (),
    tracking_uri: str | None = None,
    experiment: str | None = None,
    skip_unchanged: bool = True,
) -> PipelineRun:
    """`dvc repro` (with `force_stages`, the same forced rebuild as master-build) inside an MLflow
    run handed to the training script, then every declared metric logged to that run."""
    project = load_project(Path(project_dir))
    root = project.root
    uri = resolve_tracking_uri(tracking_uri, root)
    commit = _head_commit(root)
    fingerprint = outputs_fingerprint(project)
    if skip_unchanged and model_name:
        since = _promoted_version(root, model_name, alias, uri, fingerprint)
        if since and not read_pipeline_status(project):
            unchanged = PipelineRun(str(root), uri, commit, fingerprint, False, unchanged_since=since)
            log.info("mlops: %s", unchanged.summary)
            return unchanged
    targets = list(plan_rebuild(project, list(force_stages)).forced) if force_stages else []
    run = open_run(
        uri,
        experiment or project_name(root),
        f"{SCHEDULED_KIND}-{commit[:8]}",
        {"mlops.kind": SCHEDULED_KIND, "mlops.git_commit": commit},
    )
    try:
        output = dvc.repro(root, targets, ["--force", "--downstream"] if targets else [], run_environment(run))
        metrics = read_metrics_files(root, list(project.metrics_files)) if project.metrics_files else {}
    except BaseException as error:
        # Best effort: ending the run never hides why it failed (Airflow's task kill is KILLED).
        status = "FAILED" if isinstance(error, Exception) else "KILLED"
        with contextlib.suppress(Exception):
            finish_run(run, tags={"mlops.verdict": "build-failed"}, status=status)
        raise
    ran = tuple(STAGE_RAN.findall(output))
    fingerprint = outputs_fingerprint(load_project(root))
    finish_run(run, metrics=metrics, tags={"mlops.stages_ran": ",".join(ran) or "none", OUTPUTS_TAG: fingerprint})
    result = PipelineRun(str(root), uri, commit, fingerprint, True, run.run_id, run.experiment_id, ran, metrics)
    log.info("mlops: %s", result.summary)
    return result


def _alias_baseline(
    tracking_uri: str, model_name: str, alias: str, gated: list[str]
) -> tuple[Mapping[str, MetricValue], str] | None:
    try:
        version = resolve_alias(tracking_uri, model_name, alias)
    except ConfigError:
        return None  # nothing behind the alias yet
    metrics = version_metrics(tracking_uri, model_name, version)
    if gated and not any(name in metrics for name in gated):
        log.warning(
            "mlops: v%s behind '%s@%s' has none of the gated metrics; trying the next baseline",
            version,
            model_name,
            alias,
        )
        return None
    return metrics, f"'{model_name}' v{version} (alias '{alias}')"


def _checkout(pipeline: PipelineRun, source: ProjectSource | None):
    """The run's project: its shared directory, or a fresh checkout of its commit."""
    if source is not None:
        return source.checkout(pipeline.commit)
    return contextlib.nullcontext(Path(pipeline.project_dir))


def gate_pipeline(
    pipeline: PipelineRun,
    *,
    thresholds: tuple[str, ...] = (),
    max_regressions: tuple[str, ...] = (),
    model_name: str | None = None,
    baseline_alias: str | None = None,
    baseline_ref: str | None = None,
    allow_missing_baseline: bool = False,
    source: ProjectSource | None = None,
) -> ScheduledGate:
    """Gate the run's metrics. The baseline: the model behind `baseline_alias`, else the project
    at `baseline_ref`, else none (every regression rule then fails, unless allowed)."""
    if not pipeline.changed:
        return ScheduledGate("unchanged", {}, {}, f"nothing changed since v{pipeline.unchanged_since}")
    threshold_rules, regression_rules = parse_gate_rules(thresholds, max_regressions)
    gated = [rule.metric for rule in threshold_rules] + [rule.metric for rule in regression_rules]
    found = None
    tried: list[str] = []
    if baseline_alias and model_name:
        found = _alias_baseline(pipeline.tracking_uri, model_name, baseline_alias, gated)
        tried.append(f"alias '{baseline_alias}' of '{model_name}'")
    if found is None and baseline_ref:
        with _checkout(pipeline, source) as root:
            project = load_project(root)
            baseline = read_baseline(project, baseline_ref, project.metrics_files)
        found = baseline.metrics, f"git ref '{baseline_ref}' ({baseline.commit[:8]})"
        tried.append(f"git ref '{baseline_ref}'")
    if found is None:
        baseline_source = "no baseline" + (
            f": nothing behind {' nor '.join(tried)}" if tried else ": set baseline_alias or baseline_ref"
        )
        metrics: Mapping[str, MetricValue] = {}
    else:
        metrics, baseline_source = found
    result = evaluate_gate(
        pipeline.metrics,
        list(threshold_rules),
        list(regression_rules),
        metrics if found is not None else None,
        allow_missing_baseline=allow_missing_baseline,
    )
    return ScheduledGate(
        "passed" if result.passed else "failed", pipeline.metrics, dict(metrics), baseline_source, result.checks
    )


def promote_pipeline_model(
    pipeline: PipelineRun,
    *,
    model_name: str,
    alias: str,
    model_artifact_path: str = "model",
    model_path: str | None = None,
    model_artifact: str | None = None,
    dag_id: str | None = None,
    invocation_id: str | None = None,
    source: ProjectSource | None = None,
    version_tags_extra: Mapping[str, str] | None = None,
    commit_lock: bool = False,
    identity: GitIdentity | None = None,
) -> Promotion:
    """Register the run's model (the version of the same outputs when there is one), give it its
    provenance statement (`dag_id` is the builder, `invocation_id` the DAG run), move `alias`.

    With a checkout per task (`source`), this task checks out the run's commit (the lock commit
    when the lock was committed back; else the commit, with the run's lock files written over
    it), so a model DVC tracks is pulled from the DVC remote at the lock's hashes, and the alias
    moves in commit order, as master-build's does. With `commit_lock`, the run's lock is committed
    back to the branch (master-build's commit-back) before the alias moves: only a model that
    passed its gate gets there."""
    if not pipeline.changed:
        version = pipeline.unchanged_since or ""
        return Promotion(model_name, version, f"models:/{model_name}/{version}", alias, version, True, unchanged=True)
    options = (model_name, alias, model_artifact_path, model_path, model_artifact, dag_id, invocation_id)
    if source is None:
        return _promote(pipeline, *options, version_tags_extra or {}, ordered_by=None)
    with source.checkout(pipeline.commit) as root:
        record = read_run_artifact(pipeline.tracking_uri, pipeline.run_id or "", LOCK_ARTIFACT)
        if record is None:
            raise ConfigError(
                f"MLflow run {pipeline.run_id} holds no {LOCK_ARTIFACT}: run_dvc_pipeline did not finish it with "
                "repo_url; run the DAG again"
            )
        restore_lock_from_run(root, record.decode())
        project = load_project(root)
        here = replace(pipeline, project_dir=str(root))
        tags = {**(version_tags_extra or {}), **_built_out_tags(pipeline, project)}
        branch = source.repo.branch

        def commit_back() -> LockCommitResult:
            with source.credentials_in_env():
                return _commit_run_lock(project, pipeline.commit, branch, identity or DEFAULT_LOCK_IDENTITY)

        lock = commit_back if commit_lock else None
        return _promote(here, *options, tags, ordered_by=project.git_root, commit_lock=lock)


def _commit_run_lock(project: Project, commit: str, branch: str, identity: GitIdentity) -> LockCommitResult:
    """master-build's commit-back of the run's lock (and the outs git keeps) to `branch`."""
    lock = commit_lock_file(
        project.git_root,
        built_commit=commit,
        branch=branch,
        remote="origin",
        # the lock, the outs git keeps, and the imports' .dvc files `dvc update` rewrote: one state
        paths=[
            project.git_path(path) for path in (*project.lockfiles, *project.git_kept_outs, *import_stages(project))
        ],
        identity=identity,
        mode="commit",
        pipeline_inputs=project.pipeline_inputs,
    )
    log.info("mlops: dvc.lock %s%s", lock.status, f" ({lock.detail})" if lock.detail else "")
    return lock


def _built_out_tags(pipeline: PipelineRun, project: Project) -> dict[str, str]:
    tags = {INPUTS_TAG: pipeline.inputs} if pipeline.inputs else {}
    if pipeline.run_id:
        tags.update({f"{OUT_MD5_PREFIX}{out.path}": out.md5 for out in project.outs if out.md5 and out.cached})
    return tags


def _promote(
    pipeline: PipelineRun,
    model_name: str,
    alias: str,
    model_artifact_path: str,
    model_path: str | None,
    model_artifact: str | None,
    dag_id: str | None,
    invocation_id: str | None,
    extra_tags: Mapping[str, str],
    *,
    ordered_by: Path | None,
    commit_lock: Callable[[], LockCommitResult] | None = None,
) -> Promotion:
    uri, root = pipeline.tracking_uri, Path(pipeline.project_dir)
    tags = {
        OUTPUTS_TAG: pipeline.fingerprint,
        "mlops.git_commit": pipeline.commit,
        "mlops.kind": SCHEDULED_KIND,
        **extra_tags,
    }
    registered = version_with_tag(uri, model_name, OUTPUTS_TAG, pipeline.fingerprint)
    if registered is None:
        source, model_id, extra, run_id = _model_to_register(pipeline, model_artifact_path, model_path, model_artifact)
        registered = register_version(
            uri,
            model_name,
            source,
            run_id,
            {**tags, **extra},
            model_id=model_id,
            reuse_key=(OUTPUTS_TAG, pipeline.fingerprint),
        )
    _attach_statement(pipeline, registered, alias, model_path, dag_id, invocation_id)
    if registered.reused and pipeline.inputs:
        # other inputs (an import's new source, a param no stage reads) built the same outputs:
        # the next run of these inputs finds them behind the alias, and does nothing
        tag_version(uri, model_name, registered.version, {INPUTS_TAG: pipeline.inputs})
    lock_commit = None
    if commit_lock is not None:  # after the version and its statement, before the alias: a re-run finishes it
        lock = commit_lock()
        if lock.status == "superseded":
            # master-build's rule: a newer commit that changed the pipeline's inputs owns the branch's
            # lock and the alias; this build commits nothing and moves nothing
            log.info("mlops: %s; the alias '%s' is left where it is", lock.detail, alias)
            version = registered.version
            return Promotion(
                model_name,
                version,
                f"models:/{model_name}/{version}",
                alias,
                None,
                registered.reused,
                superseded_by=lock.superseded_by,
            )
        lock_commit = lock.commit if lock.status in ("committed", "unchanged") else None
        if lock_commit:
            tag_version(uri, model_name, registered.version, {LOCK_COMMIT_TAG: lock_commit})
    if ordered_by is not None:  # the alias moves in the commit order of this checkout's history
        move = move_alias_in_commit_order(
            uri,
            model_name,
            alias,
            registered.version,
            pipeline.commit,
            f"scheduled promote of {pipeline.commit[:12]}",
            ancestry(ordered_by, "origin"),
        )
        if move.superseded_by:
            log.info(
                "mlops: alias '%s' stays on v%s, built from the newer commit %s",
                alias,
                move.version,
                move.superseded_by[:12],
            )
    else:
        move = set_alias(uri, model_name, alias, registered.version, pipeline.commit, "scheduled promote")
    promotion = Promotion(
        model_name,
        registered.version,
        f"models:/{model_name}/{registered.version}",
        alias,
        move.previous,
        registered.reused,
        lock_commit=lock_commit,
    )
    if ordered_by is None:  # one shared workspace: the next run reads what it promoted here
        _remember_promotion(root, promotion, uri, pipeline.fingerprint)
    log.info(
        "mlops: '%s' v%s%s → alias '%s'", model_name, promotion.version, " (reused)" if promotion.reused else "", alias
    )
    return promotion


def _model_to_register(
    pipeline: PipelineRun, artifact_path: str, model_path: str | None, model_artifact: str | None
) -> tuple[str, str | None, dict[str, str], str]:
    """(source, model id, tags, run id): the model the training script logged to this run or, when
    training did not run this time, to an earlier run of the same outputs; else the file or
    directory `model_path` or dvc.yaml's `artifacts:` names, logged into this run now."""
    assert pipeline.run_id
    assert pipeline.experiment_id
    uri = pipeline.tracking_uri
    earlier = runs_with_tag(uri, pipeline.experiment_id, OUTPUTS_TAG, pipeline.fingerprint)
    for run_id in dict.fromkeys([pipeline.run_id, *earlier]):
        logged = run_model(uri, run_id, artifact_path)
        if logged:
            return logged[0], logged[1], {}, run_id
    project = load_project(Path(pipeline.project_dir))
    declared = model_source.check_model_source_declared(project, model_path, model_artifact)
    if declared and pipeline.source and not (project.root / declared).exists():
        # a checkout of its own: the model is on the DVC remote, at the hash the run's lock records
        remote = dvc.resolve_remote(project.root, None)
        dvc.pull(project.root, [declared], remote, dvc.remote_endpoint(project.root, remote))
    path = model_source.resolve_model_path(project, model_path, model_artifact)
    if path is None:
        raise ConfigError(
            f"no MLflow run of these outputs (run {pipeline.run_id} and earlier) logged a model, and dvc.yaml "
            "declares no `artifacts:` entry of type model; log one with mlflow.<flavor>.log_model in the training "
            "stage, declare it under `artifacts:`, or pass model_path"
        )
    run = TrackedRun(uri, pipeline.experiment_id, pipeline.run_id)
    hashes = {out.path: out.md5 for out in project.outs if out.md5}
    logged_path = model_source.log_model_from_path(
        run, project.root, path, model_source.model_md5(project, path, hashes), None
    )
    return logged_path.source, logged_path.model_id, dict(logged_path.tags), pipeline.run_id


def _attach_statement(
    pipeline: PipelineRun,
    registered: RegisteredVersion,
    alias: str,
    model_path: str | None,
    dag_id: str | None,
    invocation_id: str | None,
) -> None:
    """The version's provenance statement (kept when a reused version holds a valid one), before
    the alias moves: a failure leaves the alias where it was, and the task's retry writes it.

    This checkout's facts (commit, inputs, params) are the version's only when it was registered
    in this call, or is a reused one registered from this same commit (a retry): a version reused
    from an older run of the same outputs, at another commit, is left as it is (a statement naming
    this commit would be false)."""
    if registered.reused:
        commit = version_tags(pipeline.tracking_uri, registered.name, registered.version).get("mlops.git_commit")
        if commit != pipeline.commit or pipeline.commit == "unknown":
            log.info(
                "mlops: v%s was registered from commit %s, not this run's %s: its provenance statement is left as it is",
                registered.version,
                commit or "unknown",
                pipeline.commit,
            )
            return
    project = load_project(Path(pipeline.project_dir))
    stages = tuple(name for name in pipeline.stages_ran if name in project.stage_names)
    hashes = {out.path: out.md5 for out in project.outs if out.md5}
    default = dvc.default_remote(project.root)
    remote_url = dvc.remotes(project.root).get(default) if default else None
    origin = git.remote_url(project.git_root) if pipeline.commit != "unknown" else None
    source = GitSource(origin or str(project.git_root), pipeline.commit) if pipeline.commit != "unknown" else None
    facts = StatementFacts(
        BuildParameters("airflow-promote", registered.name, alias, stages, model_source=registered.source),
        builder_id(dag_id),
        invocation_id,
        pipeline.tracking_uri,
        registered.run_id,
        registered.version,
        tool_version(),
        source,
        dvc_dependencies(project, stages, hashes, remote_url),
        params_digests(project, stages),
        model_out(project, model_path, stages, hashes, remote_url),
    )
    written = attach_statement(pipeline.tracking_uri, registered.name, registered.version, facts)
    if written:
        log.info("mlops: %s (v%s)", written.done_text, registered.version)
