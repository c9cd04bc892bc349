"""Apache Airflow integration (extra `mlops-actions[airflow]`): the same pipeline on a schedule.

`mlops_pipeline_dag()` builds the standard shape on the ci_helpers core, not a second
implementation:

    run_dvc_pipeline >> validate >> [promote, alert]

- run_dvc_pipeline: `dvc repro` (DVC's caching skips unchanged stages), or with `force_stages`
  the same forced rebuild as master-build; an MLflow run is opened and handed to the training
  script through MLFLOW_RUN_ID.
- validate: the metrics gate (same threshold and regression syntax as the CLI) branches.
- promote: registers the model (reusing the version when the model did not change) and moves
  the alias.
- alert: calls the user's hook with the failing checks (default: log them).

Bad configuration (a malformed threshold, a missing project) raises at DAG parse time.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..gate import parse_regression, parse_threshold

log = logging.getLogger(__name__)
AlertHook = Callable[[list[dict], dict], None]
_RAN = re.compile(r"Running stage '([^']+)'")


def log_alert(failing_checks: list[dict], context: dict) -> None:
    """The default alert hook: a warning per failing check."""
    for check in failing_checks:
        log.warning(
            "mlops gate failed: %s = %s, needs %s %s", check["metric"], check["value"], check["op"], check["threshold"]
        )


def _validate_config(
    project_dir: str | Path,
    thresholds: Sequence[str],
    max_regressions: Sequence[str],
    model_name: str | None,
    alias: str,
) -> Path:
    from ..registry_names import validate_alias, validate_model_name

    try:
        for text in thresholds:
            parse_threshold(text)
        for text in max_regressions:
            parse_regression(text)
        if model_name:
            validate_model_name(model_name)
        validate_alias(alias)
    except ConfigError as error:
        raise ValueError(f"mlops DAG configuration: {error}") from None
    project = Path(project_dir)
    if not (project / "dvc.yaml").is_file():
        raise ValueError(
            f"mlops DAG configuration: project directory {project} has no dvc.yaml; point project_dir at your DVC project"
        )
    return project


def run_dvc_pipeline(
    project_dir: str, force_stages: Sequence[str], tracking_uri: str | None, experiment: str | None
) -> dict:
    """Reproduce the pipeline inside an MLflow run this task owns; report which stages ran."""
    from ..adapters import dvc, git
    from ..adapters.runner import run
    from ..adapters.tracking import finish_run, open_run, resolve_tracking_uri, run_environment
    from ..project import load_project
    from ..provenance import project_name
    from ..rebuild_plan import plan_rebuild

    repo = Path(project_dir).resolve()
    uri = resolve_tracking_uri(tracking_uri, repo)
    try:
        commit = git.head_commit(repo)
    except Exception:
        commit = "unknown"
    run_info = open_run(
        uri,
        experiment or project_name(repo),
        f"airflow-{commit[:8]}",
        {"mlops.kind": "airflow", "mlops.git_commit": commit},
    )
    if force_stages:
        plan = plan_rebuild(load_project(repo), list(force_stages))
        args = ["repro", "--force", "--downstream", *plan.forced]
    else:
        args = ["repro"]
    try:
        output = run([dvc.dvc_executable(), *args], cwd=repo, env=run_environment(run_info), stream=True).stdout
    except BaseException:
        finish_run(run_info, tags={"mlops.verdict": "build-failed"}, status="FAILED")
        raise
    ran = _RAN.findall(output)
    finish_run(run_info, tags={"mlops.stages_ran": ",".join(ran) or "none"})
    return {"run_id": run_info.run_id, "tracking_uri": uri, "stages_ran": ran, "commit": commit}


def gate_project_metrics(
    project_dir: str,
    metrics_files: Sequence[str],
    thresholds: Sequence[str],
    max_regressions: Sequence[str],
    baseline: dict | None,
    allow_missing_baseline: bool = False,
) -> dict:
    """Gate the project's metrics files; returns {'passed', 'metrics', 'checks'}. A regression rule
    with no baseline fails unless `allow_missing_baseline`."""
    from ..gate import evaluate_gate
    from ..metrics import read_metrics_files
    from ..project import load_project

    repo = Path(project_dir).resolve()
    files = list(metrics_files) or list(load_project(repo).metrics_files)
    metrics = read_metrics_files(repo, files)
    gate = evaluate_gate(
        metrics,
        [parse_threshold(t) for t in thresholds],
        [parse_regression(r) for r in max_regressions],
        baseline,
        allow_missing_baseline=allow_missing_baseline,
    )
    return {"passed": gate.passed, "metrics": metrics, "checks": [asdict(c) for c in gate.checks]}


def promote_model(
    project_dir: str, pipeline: dict, model_name: str, alias: str, model_artifact_path: str = "model"
) -> dict:
    """Register the model (the same version again when the model file did not change), move the alias."""
    from ..adapters.registry import find_run_model, register_version, set_alias
    from ..project import load_project

    repo = Path(project_dir).resolve()
    uri = pipeline["tracking_uri"]
    project = load_project(repo)
    outputs = {out.path: out.md5 for stage in project.pipeline_stages for out in stage.outs if out.cached and out.md5}
    fingerprint = ",".join(f"{path}:{outputs[path]}" for path in sorted(outputs))
    key = ("mlops.outputs_md5", fingerprint[:5000])
    source: str | None = None
    model_id: str | None = None
    # A run that retrained nothing logged no model: only an existing version with the same outputs can be promoted.
    with contextlib.suppress(ConfigError):
        source, model_id = find_run_model(uri, pipeline["run_id"], model_artifact_path)
    if source is None:
        version = register_version(uri, model_name, "unused", None, {}, reuse_key=key, reuse_only=True)
    else:
        version = register_version(
            uri,
            model_name,
            source,
            pipeline["run_id"],
            {key[0]: key[1], "mlops.git_commit": pipeline["commit"], "mlops.kind": "airflow"},
            model_id=model_id,
            reuse_key=key,
        )
    move = set_alias(uri, model_name, alias, version.version, pipeline["commit"], "airflow promote")
    return {"model_uri": version.uri, "version": version.version, "alias": alias, "previous": move.previous}


def mlops_pipeline_dag(
    dag_id: str,
    project_dir: str | Path,
    *,
    model_name: str,
    thresholds: Sequence[str] = (),
    max_regressions: Sequence[str] = (),
    metrics_files: Sequence[str] = (),
    force_stages: Sequence[str] = (),
    alias: str = "staging",
    baseline_alias: str | None = None,
    allow_missing_baseline: bool = False,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    alert: AlertHook = log_alert,
    schedule: str | None = "@daily",
    start_date: datetime | None = None,
    retries: int = 1,
    retry_delay: timedelta = timedelta(minutes=5),
    tags: Sequence[str] = ("mlops",),
):
    """Build `run_dvc_pipeline >> validate >> [promote, alert]` for one DVC project."""
    from airflow.sdk import DAG, task

    project = _validate_config(project_dir, thresholds, max_regressions, model_name, alias)
    project_str = str(project.resolve())
    default_args = {"retries": retries, "retry_delay": retry_delay}
    with DAG(
        dag_id,
        schedule=schedule,
        start_date=start_date or datetime(2026, 1, 1),
        catchup=False,
        default_args=default_args,
        tags=list(tags),
        doc_md=f"DVC pipeline of `{project_str}` → gate → promote `{model_name}@{alias}` or alert.",
    ) as dag:

        @task(task_id="run_dvc_pipeline")
        def run_pipeline_task() -> dict:
            return run_dvc_pipeline(project_str, force_stages, tracking_uri, experiment)

        @task.branch(task_id="validate", retries=0)
        def validate_task(pipeline: dict, ti=None) -> str:
            baseline = None
            if baseline_alias:
                from ..adapters.registry import resolve_alias, version_metrics

                try:
                    version = resolve_alias(pipeline["tracking_uri"], model_name, baseline_alias)
                    baseline = version_metrics(pipeline["tracking_uri"], model_name, version)
                except ConfigError:
                    baseline = None  # nothing behind the alias yet: thresholds only
            result = gate_project_metrics(
                project_str, metrics_files, thresholds, max_regressions, baseline, allow_missing_baseline
            )
            ti.xcom_push(key="gate", value=result)
            return "promote" if result["passed"] else "alert"

        @task(task_id="promote", retries=0)
        def promote_task(pipeline: dict) -> dict:
            return promote_model(project_str, pipeline, model_name, alias)

        @task(task_id="alert", retries=0)
        def alert_task(ti=None, **context) -> list[dict]:
            gate = ti.xcom_pull(task_ids="validate", key="gate")
            failing = [check for check in gate["checks"] if not check["passed"]]
            alert(failing, {"dag_id": dag_id, "metrics": gate["metrics"], "run_id": context.get("run_id")})
            return failing

        pipeline: Any = run_pipeline_task()  # an XComArg that Airflow resolves to the task's dict
        validate_task(pipeline) >> [promote_task(pipeline), alert_task()]
    return dag
