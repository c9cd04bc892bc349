"""Airflow operators for the scheduled pipeline, usable on their own or through
`mlops_pipeline_dag`. Each wraps one step of `ci_helpers.flows.scheduled` and passes its result to
the next through XCom; string fields are templated (`{{ params.alias }}`, `{{ var.value.x }}`).

    DvcReproOperator      `dvc repro` inside an MLflow run, the declared metrics logged to it
    GateMetricsOperator   the gate; a branch when given on_pass/on_fail, else fails on a failed gate
    PromoteModelOperator  register the model (reusing the version of the same outputs), move the alias
    MlopsAlertOperator    call the alert hook with the failing checks, then fail the run
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from airflow.providers.standard.operators.branch import BranchMixIn
from airflow.sdk import BaseOperator

from ..adapters.git_checkout import RepoSource
from ..flows.scheduled import DEFAULT_LOCK_IDENTITY, gate_pipeline, promote_pipeline_model, reproduce_pipeline
from ..flows.scheduled_build import reproduce_from_repo
from ..lock_commit import GitIdentity
from ..pipeline_run import PipelineRun
from ..project_source import ProjectSource
from .exceptions import MlopsConfigError, MlopsGateFailed, as_airflow_errors
from .git_credentials import credentials_from_connection

log = logging.getLogger(__name__)
AlertHook = Callable[[list[dict], dict], None]
PIPELINE_TASK_ID = "run_dvc_pipeline"
GATE_TASK_ID = "validate"
GATE_XCOM_KEY = "gate"


def log_alert(failing_checks: list[dict], context: dict) -> None:
    """The default alert hook: a warning per failing check."""
    for check in failing_checks:
        log.warning(
            "mlops gate failed: %s = %s, needs %s %s", check["metric"], check["value"], check["op"], check["threshold"]
        )


def _pipeline(context: Any, task_id: str) -> PipelineRun:
    data = context["ti"].xcom_pull(task_ids=task_id)
    if not data:
        raise MlopsConfigError(
            f"task '{task_id}' left no pipeline result in XCom; point pipeline_task_id at a DvcReproOperator"
        )
    return PipelineRun.from_xcom(data)


def _gate(context: Any, task_id: str) -> dict:
    data = context["ti"].xcom_pull(task_ids=task_id, key=GATE_XCOM_KEY)
    if not data:
        raise MlopsConfigError(
            f"task '{task_id}' left no gate result in XCom; point gate_task_id at a GateMetricsOperator"
        )
    return data


class DvcReproOperator(BaseOperator):
    """`dvc repro` (with `force_stages`: those stages and their downstream, forced) inside an
    MLflow run it hands to the training script through MLFLOW_RUN_ID; every metric the project
    declares is logged to that run. With `model_name`, a pipeline whose outputs are already behind
    `alias` runs nothing (`skip_unchanged`).

    The project is `project_dir`, a checkout every task of every run shares (one machine), or
    `repo_url` + `branch` (+ `subdir`): this task pins the branch's tip, works in a fresh checkout
    under the worker's temporary directory, removed when it ends, and hands on through XCom, the
    DVC remote (`dvc push`, verified) and MLflow (the lock it built is kept on its run) only. There,
    `update_imports` runs `dvc update` on the import stages first, `git_conn_id` names the
    Connection holding the git credentials, `cache_dir` keeps a per-worker DVC cache, and
    `commit_lock` (set it when promote commits the lock back) checks first that the branch takes
    the push."""

    template_fields: Sequence[str] = (
        "project_dir",
        "repo_url",
        "branch",
        "subdir",
        "cache_dir",
        "force_stages",
        "tracking_uri",
        "experiment",
        "model_name",
        "alias",
    )
    ui_color = "#d8e8f8"

    def __init__(
        self,
        *,
        project_dir: str | None = None,
        repo_url: str | None = None,
        branch: str = "main",
        subdir: str = "",
        git_conn_id: str | None = None,
        cache_dir: str | None = None,
        update_imports: bool = False,
        commit_lock: bool = False,
        model_name: str | None = None,
        alias: str = "staging",
        force_stages: Sequence[str] = (),
        tracking_uri: str | None = None,
        experiment: str | None = None,
        skip_unchanged: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (project_dir is None) == (repo_url is None):
            raise ValueError(
                f"{self.task_id}: pass project_dir (one machine) or repo_url (a checkout per task), not both"
            )
        self.project_dir = str(project_dir) if project_dir is not None else None
        self.repo_url = repo_url
        self.branch = branch
        self.subdir = subdir
        self.git_conn_id = git_conn_id
        self.cache_dir = cache_dir
        self.update_imports = update_imports
        self.commit_lock = commit_lock
        self.model_name = model_name
        self.alias = alias
        self.force_stages = list(force_stages)
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.skip_unchanged = skip_unchanged

    def execute(self, context: Any) -> dict:
        with as_airflow_errors():
            if self.repo_url is None:
                result = reproduce_pipeline(
                    self.project_dir or "",
                    model_name=self.model_name,
                    alias=self.alias,
                    force_stages=tuple(self.force_stages),
                    tracking_uri=self.tracking_uri,
                    experiment=self.experiment,
                    skip_unchanged=self.skip_unchanged,
                )
            else:
                result = reproduce_from_repo(
                    self._source(),
                    model_name=self.model_name,
                    alias=self.alias,
                    force_stages=tuple(self.force_stages),
                    tracking_uri=self.tracking_uri,
                    experiment=self.experiment,
                    skip_unchanged=self.skip_unchanged,
                    update_imports=self.update_imports,
                    commit_lock=self.commit_lock,
                    run_tags=_run_tags(self.dag_id, context),
                )
        return {**result.as_xcom(), "worker": worker_name()}

    def _source(self) -> ProjectSource:
        assert self.repo_url is not None
        return ProjectSource(
            repo=RepoSource(self.repo_url, self.branch, self.subdir),
            git_conn_id=self.git_conn_id,
            cache_dir=self.cache_dir,
            credentials=credentials_from_connection(self.git_conn_id),
        )


def worker_name() -> str:
    """The worker as Airflow names it (its `hostname_callable`): where this task ran."""
    from airflow.utils.net import get_hostname

    return get_hostname()


def _identity(name: str | None, email: str | None) -> GitIdentity | None:
    if not (name or email):
        return None
    return GitIdentity(name or DEFAULT_LOCK_IDENTITY.name, email or DEFAULT_LOCK_IDENTITY.email)


def _run_tags(dag_id: str, context: Any) -> dict[str, str]:
    return {"mlops.airflow_dag": dag_id, "mlops.airflow_run_id": str(context.get("run_id"))}


def _pipeline_source(pipeline: PipelineRun) -> ProjectSource | None:
    """Where this task finds the run's project: a checkout of its own when the first task had one."""
    if not pipeline.source:
        return None
    return ProjectSource.from_xcom(pipeline.source, credentials_from_connection(pipeline.source.get("git_conn_id")))


class GateMetricsOperator(BaseOperator, BranchMixIn):
    """Gate the metrics of `pipeline_task_id`'s run: thresholds, and regressions against the model
    behind `baseline_alias`, else the project at `baseline_ref`, else no baseline (regression rules
    then fail unless `allow_missing_baseline`). The report table goes to the task log and XCom
    (key 'gate'). Given `on_pass`/`on_fail` task ids it branches to one of them (to neither when
    nothing changed); otherwise a failed gate fails the task (MlopsGateFailed, never retried)."""

    template_fields: Sequence[str] = (
        "thresholds",
        "max_regressions",
        "model_name",
        "baseline_alias",
        "baseline_ref",
        "pipeline_task_id",
    )
    ui_color = "#f8f0d8"
    inherits_from_skipmixin = True

    def __init__(
        self,
        *,
        thresholds: Sequence[str] = (),
        max_regressions: Sequence[str] = (),
        model_name: str | None = None,
        baseline_alias: str | None = None,
        baseline_ref: str | None = None,
        allow_missing_baseline: bool = False,
        pipeline_task_id: str = PIPELINE_TASK_ID,
        on_pass: str | None = None,
        on_fail: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.thresholds = list(thresholds)
        self.max_regressions = list(max_regressions)
        self.model_name = model_name
        self.baseline_alias = baseline_alias
        self.baseline_ref = baseline_ref
        self.allow_missing_baseline = allow_missing_baseline
        self.pipeline_task_id = pipeline_task_id
        self.on_pass = on_pass
        self.on_fail = on_fail

    def execute(self, context: Any) -> dict:
        with as_airflow_errors():
            pipeline = _pipeline(context, self.pipeline_task_id)
            gate = gate_pipeline(
                pipeline,
                source=_pipeline_source(pipeline) if self.baseline_ref else None,
                thresholds=tuple(self.thresholds),
                max_regressions=tuple(self.max_regressions),
                model_name=self.model_name,
                baseline_alias=self.baseline_alias,
                baseline_ref=self.baseline_ref,
                allow_missing_baseline=self.allow_missing_baseline,
            )
        result = gate.as_xcom()
        self.log.info("%s", gate.report)
        context["ti"].xcom_push(key=GATE_XCOM_KEY, value=result)
        if self.on_pass or self.on_fail:
            branch = None if gate.verdict == "unchanged" else (self.on_pass if gate.passed else self.on_fail)
            self.do_branch(context, branch)
        elif not gate.passed:
            raise MlopsGateFailed(_failure_message(result))
        return result


def _failure_message(gate: dict) -> str:
    lines = [line.removeprefix("- ") for line in gate["report"].splitlines() if line.startswith("- ")]
    return "the model failed its gate: " + "; ".join(lines)


class PromoteModelOperator(BaseOperator):
    """Register the model of `pipeline_task_id`'s run as `model_name` (the version of the same
    outputs again when there is one; a model the training script did not log is taken from
    `model_path` or dvc.yaml's `artifacts:`) and move `alias` to it. With `gate_task_id`, refuses
    unless that gate passed. When the run came from `repo_url`, this task checks out its commit
    with the run's lock, and `commit_lock` commits that lock back to the branch (`[skip ci]`,
    rebased and retried, never forced; as `git_user_name` <`git_user_email`>) before the alias
    moves."""

    template_fields: Sequence[str] = (
        "model_name",
        "alias",
        "pipeline_task_id",
        "gate_task_id",
        "model_path",
        "model_artifact",
    )
    ui_color = "#d8f8e0"

    def __init__(
        self,
        *,
        model_name: str,
        alias: str = "staging",
        pipeline_task_id: str = PIPELINE_TASK_ID,
        gate_task_id: str | None = None,
        model_artifact_path: str = "model",
        model_path: str | None = None,
        model_artifact: str | None = None,
        commit_lock: bool = False,
        git_user_name: str | None = None,
        git_user_email: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.commit_lock = commit_lock
        self.git_user_name = git_user_name
        self.git_user_email = git_user_email
        self.model_name = model_name
        self.alias = alias
        self.pipeline_task_id = pipeline_task_id
        self.gate_task_id = gate_task_id
        self.model_artifact_path = model_artifact_path
        self.model_path = model_path
        self.model_artifact = model_artifact

    def execute(self, context: Any) -> dict:
        if self.gate_task_id and not _gate(context, self.gate_task_id)["passed"]:
            raise MlopsGateFailed(f"the gate in task '{self.gate_task_id}' failed; not promoting '{self.model_name}'")
        with as_airflow_errors():
            pipeline = _pipeline(context, self.pipeline_task_id)
            promotion = promote_pipeline_model(
                pipeline,
                model_name=self.model_name,
                alias=self.alias,
                model_artifact_path=self.model_artifact_path,
                model_path=self.model_path,
                model_artifact=self.model_artifact,
                dag_id=self.dag_id,
                invocation_id=f"airflow://dags/{self.dag_id}/runs/{context.get('run_id')}",
                source=_pipeline_source(pipeline),
                version_tags_extra=_run_tags(self.dag_id, context),
                commit_lock=self.commit_lock,
                identity=_identity(self.git_user_name, self.git_user_email),
            )
        return {**promotion.as_xcom(), "worker": worker_name()}


class MlopsAlertOperator(BaseOperator):
    """Call `alert(failing_checks, context)` with the failed checks of `gate_task_id`, then fail
    the task (MlopsGateFailed, never retried), so that the DAG run ends failed and Airflow's own
    alerting sees it; `fail_on_alert=False` lets the run succeed after the hook."""

    template_fields: Sequence[str] = ("gate_task_id",)
    ui_color = "#f8d8d8"

    def __init__(
        self,
        *,
        alert: AlertHook = log_alert,
        gate_task_id: str = GATE_TASK_ID,
        fail_on_alert: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.alert = alert
        self.gate_task_id = gate_task_id
        self.fail_on_alert = fail_on_alert

    def execute(self, context: Any) -> list[dict]:
        gate = _gate(context, self.gate_task_id)
        self.alert(
            gate["failing"],
            {
                "dag_id": self.dag_id,
                "run_id": context.get("run_id"),
                "metrics": gate["metrics"],
                "baseline": gate["baseline"],
                "baseline_source": gate["baseline_source"],
                "report": gate["report"],
            },
        )
        if self.fail_on_alert:
            raise MlopsGateFailed(_failure_message(gate))
        return gate["failing"]
