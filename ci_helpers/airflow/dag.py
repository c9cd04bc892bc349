"""`mlops_pipeline_dag()`: the standard scheduled pipeline as one DAG, built from the operators.

    run_dvc_pipeline >> validate >> [promote, alert]

- run_dvc_pipeline (DvcReproOperator): `dvc repro` inside an MLflow run it owns, the declared
  metrics logged to it; nothing at all when nothing changed since the version it last promoted;
- validate (GateMetricsOperator): the gate, branching to promote or alert (to neither when
  nothing changed);
- promote (PromoteModelOperator): register the model and move the alias;
- alert (MlopsAlertOperator): the user's hook, then the run fails (unless fail_on_alert=False).

Infrastructure failures are retried (`retries`); a failed gate, a bad setting or a failing stage is
not. Bad configuration (a malformed threshold, a missing project) raises when the DAG file is parsed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..gate import parse_regression, parse_threshold
from .operators import (
    GATE_TASK_ID,
    PIPELINE_TASK_ID,
    AlertHook,
    DvcReproOperator,
    GateMetricsOperator,
    MlopsAlertOperator,
    PromoteModelOperator,
    log_alert,
)

Callback = Callable[[Any], None]


def _templated(text: str) -> bool:
    return "{{" in text or "{%" in text


def _validate_repo(repo_url: str, branch: str, subdir: str) -> None:
    """What can be told without the network; the rest (reachable, branch exists, a dvc.yaml in
    subdir) the first task tells, once, never retried."""
    from ..adapters.git_checkout import RepoSource, check_branch_name

    if not repo_url.strip():
        raise ConfigError("repo_url is empty; pass the project's git repository (https://, ssh:// or a path)")
    if not _templated(branch) and not branch.strip():
        raise ConfigError("branch is empty; pass the branch to build, e.g. branch='main'")
    if not _templated(subdir) and (subdir.startswith("/") or ".." in Path(subdir).parts):
        raise ConfigError(f"subdir '{subdir}' must be a folder inside the repository, relative to its root")
    if not _templated(repo_url) and not _templated(branch) and not _templated(subdir):
        check_branch_name(RepoSource(repo_url, branch, subdir))  # RepoSource refuses a URL holding a secret


def _validate_config(
    project_dir: str | Path | None,
    repo: tuple[str, str, str] | None,
    thresholds: Sequence[str],
    max_regressions: Sequence[str],
    model_name: str,
    aliases: Sequence[str | None],
) -> Path | None:
    from ..registry_names import validate_alias, validate_model_name

    try:
        for text in thresholds:
            if not _templated(text):
                parse_threshold(text)
        for text in max_regressions:
            if not _templated(text):
                parse_regression(text)
        if not _templated(model_name):
            validate_model_name(model_name)
        for alias in aliases:
            if alias and not _templated(alias):
                validate_alias(alias)
        if (project_dir is None) == (repo is None):
            raise ConfigError(
                "pass project_dir (a checkout every task shares: one machine) or repo_url (a checkout per task: "
                "Celery, Kubernetes, hosted Airflow), not both"
            )
        if repo is not None:
            _validate_repo(*repo)
    except ConfigError as error:
        raise ValueError(f"mlops DAG configuration: {error}") from None
    if project_dir is None:
        return None
    project = Path(project_dir)
    if not _templated(str(project_dir)) and not (project / "dvc.yaml").is_file():
        raise ValueError(
            f"mlops DAG configuration: project directory {project} has no dvc.yaml; point project_dir at your DVC project"
        )
    return project


def mlops_pipeline_dag(
    dag_id: str,
    project_dir: str | Path | None = None,
    *,
    repo_url: str | None = None,
    branch: str = "main",
    subdir: str = "",
    git_conn_id: str | None = None,
    cache_dir: str | None = None,
    commit_lock: bool = False,
    update_imports: bool = False,
    git_user_name: str | None = None,
    git_user_email: str | None = None,
    task_queues: dict[str, str] | None = None,
    model_name: str,
    thresholds: Sequence[str] = (),
    max_regressions: Sequence[str] = (),
    force_stages: Sequence[str] = (),
    alias: str = "staging",
    baseline_alias: str | None = None,
    baseline_ref: str | None = None,
    allow_missing_baseline: bool = False,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    model_path: str | None = None,
    model_artifact: str | None = None,
    alert: AlertHook = log_alert,
    fail_on_alert: bool = True,
    skip_unchanged: bool = True,
    schedule: str | None = "@daily",
    start_date: datetime | None = None,
    retries: int = 1,
    retry_delay: timedelta = timedelta(minutes=5),
    default_args: dict[str, Any] | None = None,
    on_success_callback: Callback | list[Callback] | None = None,
    on_failure_callback: Callback | list[Callback] | None = None,
    email: str | Sequence[str] | None = None,
    email_on_failure: bool | None = None,
    tags: Sequence[str] = ("mlops",),
    max_active_runs: int = 1,
    catchup: bool = False,
    params: dict[str, Any] | None = None,
    doc_md: str | None = None,
):
    """Build `run_dvc_pipeline >> validate >> [promote, alert]` for one DVC project.

    The project is `project_dir`, one checkout every task shares (one machine), or `repo_url` +
    `branch` (+ `subdir`): every task checks out the commit the first one pinned, afresh, and
    what passes between tasks goes through XCom, the DVC remote and MLflow (Celery, Kubernetes,
    hosted Airflow). See DvcReproOperator for `git_conn_id`, `cache_dir`, `commit_lock`,
    `update_imports`. `task_queues` maps task ids to Celery queues (e.g. training on a GPU queue).

    `default_args` go to every task, after `retries`/`retry_delay` (so they win), and `email` /
    `email_on_failure` with them; `on_success_callback` / `on_failure_callback` are the DAG run's.
    With `project_dir`, `max_active_runs` stays 1: two runs reproducing one DVC workspace at once
    corrupt it. With `repo_url` each run has checkouts of its own, and runs may overlap.
    """
    from airflow.sdk import DAG

    repo = (repo_url, branch, subdir) if repo_url is not None else None
    project = _validate_config(project_dir, repo, thresholds, max_regressions, model_name, (alias, baseline_alias))
    if project is not None and max_active_runs != 1:
        warnings.warn(
            f"mlops DAG {dag_id}: max_active_runs={max_active_runs}: runs that share the checkout {project} "
            "corrupt its DVC workspace; keep 1 unless each run has a checkout of its own",
            UserWarning,
            stacklevel=2,
        )
    if project is None:
        project_str = None
        where = f"`{repo_url}` ({branch}{':' + subdir if subdir else ''})"
    else:
        project_str = str(project.resolve()) if not _templated(str(project_dir)) else str(project_dir)
        where = f"`{project_str}`"
    queues = task_queues or {}
    unknown = sorted(set(queues) - {PIPELINE_TASK_ID, GATE_TASK_ID, "promote", "alert"})
    if unknown:
        raise ValueError(
            f"mlops DAG configuration: task_queues names no task {', '.join(unknown)}; "
            f"use {PIPELINE_TASK_ID}, {GATE_TASK_ID}, promote, alert"
        )

    def queue(task_id: str) -> dict[str, str]:
        return {"queue": queues[task_id]} if task_id in queues else {}

    task_defaults: dict[str, Any] = {"retries": retries, "retry_delay": retry_delay, **(default_args or {})}
    if email is not None:
        task_defaults["email"] = email
    if email_on_failure is not None:
        task_defaults["email_on_failure"] = email_on_failure
    with DAG(
        dag_id,
        schedule=schedule,
        start_date=start_date or datetime(2026, 1, 1),
        catchup=catchup,
        max_active_runs=max_active_runs,
        default_args=task_defaults,
        on_success_callback=on_success_callback,
        on_failure_callback=on_failure_callback,
        params=params,
        tags=list(tags),
        doc_md=doc_md or f"DVC pipeline of {where} → gate → promote `{model_name}@{alias}`, or alert and fail.",
    ) as dag:
        pipeline = DvcReproOperator(
            task_id=PIPELINE_TASK_ID,
            project_dir=project_str,
            repo_url=repo_url,
            branch=branch,
            subdir=subdir,
            git_conn_id=git_conn_id,
            cache_dir=cache_dir,
            update_imports=update_imports,
            commit_lock=commit_lock,
            **queue(PIPELINE_TASK_ID),
            model_name=model_name,
            alias=alias,
            force_stages=force_stages,
            tracking_uri=tracking_uri,
            experiment=experiment,
            skip_unchanged=skip_unchanged,
        )
        validate = GateMetricsOperator(
            task_id=GATE_TASK_ID,
            thresholds=thresholds,
            max_regressions=max_regressions,
            model_name=model_name,
            baseline_alias=baseline_alias,
            baseline_ref=baseline_ref,
            allow_missing_baseline=allow_missing_baseline,
            on_pass="promote",
            on_fail="alert",
            **queue(GATE_TASK_ID),
        )
        promote = PromoteModelOperator(
            task_id="promote",
            model_name=model_name,
            alias=alias,
            gate_task_id=GATE_TASK_ID,
            model_path=model_path,
            model_artifact=model_artifact,
            commit_lock=commit_lock,
            git_user_name=git_user_name,
            git_user_email=git_user_email,
            **queue("promote"),
        )
        alert_task = MlopsAlertOperator(task_id="alert", alert=alert, fail_on_alert=fail_on_alert, **queue("alert"))
        pipeline >> validate >> [promote, alert_task]
    return dag
