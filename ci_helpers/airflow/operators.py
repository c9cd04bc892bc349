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

from ..flows.scheduled import PipelineRun, gate_pipeline, promote_pipeline_model, reproduce_pipeline
from .exceptions import MlopsConfigError, MlopsGateFailed, as_airflow_errors

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
    """`dvc repro` in `project_dir` (with `force_stages`: those stages and their downstream, forced)
    inside an MLflow run it hands to the training script through MLFLOW_RUN_ID; every metric the
    project declares is logged to that run. With `model_name`, an up-to-date pipeline whose outputs
    this workspace already promoted to `alias` runs nothing (`skip_unchanged`)."""

    template_fields: Sequence[str] = (
        "project_dir",
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
        project_dir: str,
        model_name: str | None = None,
        alias: str = "staging",
        force_stages: Sequence[str] = (),
        tracking_uri: str | None = None,
        experiment: str | None = None,
        skip_unchanged: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project_dir = str(project_dir)
        self.model_name = model_name
        self.alias = alias
        self.force_stages = list(force_stages)
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.skip_unchanged = skip_unchanged

    def execute(self, context: Any) -> dict:
        with as_airflow_errors():
            result = reproduce_pipeline(
                self.project_dir,
                model_name=self.model_name,
                alias=self.alias,
                force_stages=tuple(self.force_stages),
                tracking_uri=self.tracking_uri,
                experiment=self.experiment,
                skip_unchanged=self.skip_unchanged,
            )
        return result.as_xcom()


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
            gate = gate_pipeline(
                _pipeline(context, self.pipeline_task_id),
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
    unless that gate passed."""

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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
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
            promotion = promote_pipeline_model(
                _pipeline(context, self.pipeline_task_id),
                model_name=self.model_name,
                alias=self.alias,
                model_artifact_path=self.model_artifact_path,
                model_path=self.model_path,
                model_artifact=self.model_artifact,
                dag_id=self.dag_id,
                invocation_id=f"airflow://dags/{self.dag_id}/runs/{context.get('run_id')}",
            )
        return promotion.as_xcom()


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
