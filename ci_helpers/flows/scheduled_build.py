"""The scheduled pipeline's first task when every task has a checkout of its own (`repo_url`).

Nothing it makes may stay on the worker's disk, which is gone when the task ends. So, in a fresh
checkout of the commit it pins:

1. `dvc update --no-download` of the import stages (`update_imports`): a source that changed
   rewrites its `.dvc` file, so the inputs fingerprint changes;
2. "nothing changed": the inputs fingerprint (pipeline_inputs) against the one on the version
   behind the alias, one registry call; equal, and the task ends there: no pull, stage or run;
3. inside an MLflow run handed to the training script: the pull of what the stages that run need
   (master-build's plan when stages are forced; else `dvc repro --pull --allow-missing`), the
   repro, `dvc push` of the outputs, and the check that every out the new lock records is on the
   DVC remote, before anything is handed on;
4. the lock kept on the run (`mlops_lock.json`: the lock files, the outs git keeps and every out's
   hash), so that promote (which commits it back with `commit_lock`, once the gate passed) and
   anyone with a fresh clone can pull the DVC remote's objects at them.
"""

from __future__ import annotations

import contextlib
import logging
import os

from ..adapters import dvc, git
from ..adapters.registry import alias_version_tags
from ..adapters.tracking import TrackedRun, finish_run, open_run, run_environment
from ..errors import ConfigError, InfrastructureError
from ..metrics import read_metrics_files
from ..pipeline_inputs import INPUTS_TAG, import_stages, inputs_fingerprint, unknowable_inputs
from ..pipeline_run import OUTPUTS_TAG, SCHEDULED_KIND, STAGE_RAN, PipelineRun, outputs_fingerprint
from ..project import Project, load_project, stages_repro_would_run
from ..project_source import ProjectSource
from ..provenance import project_name
from ..push_check import verify_pushed
from ..rebuild_plan import RebuildPlan, plan_rebuild
from ..run_lock import LOCK_ARTIFACT, OUT_MD5_PREFIX, lock_record

log = logging.getLogger(__name__)


def shared_tracking_uri(option: str | None) -> str:
    """The tracking server every task reaches. The embedded sqlite default lives in the checkout,
    which is gone when the task ends: refused before anything starts."""
    uri = option or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise ConfigError(
            "with repo_url every task works in a checkout of its own, so MLflow's embedded store would be lost; "
            "set tracking_uri (or MLFLOW_TRACKING_URI on the workers) to the tracking server they share"
        )
    return uri


def reproduce_from_repo(
    source: ProjectSource,
    *,
    model_name: str | None = None,
    alias: str = "staging",
    force_stages: tuple[str, ...] = (),
    tracking_uri: str | None = None,
    experiment: str | None = None,
    skip_unchanged: bool = True,
    update_imports: bool = False,
    commit_lock: bool = False,
    run_tags: dict[str, str] | None = None,
) -> PipelineRun:
    """Pin the branch's tip, check it out afresh, and build it (see the module's text); the
    checkout is removed when this returns, whatever happened. `commit_lock` (promote commits the
    lock back) makes this task check, before anything is written, that the branch takes the push."""
    uri = shared_tracking_uri(tracking_uri)
    commit = source.pin()
    log.info("mlops: %s pinned at %s", source.describe(), commit)
    with source.checkout(commit) as root:
        project = load_project(root)
        plan = plan_rebuild(project, list(force_stages), "force_stages") if force_stages else None
        remote = dvc.resolve_remote(root, None)
        endpoint = dvc.remote_endpoint(root, remote)
        imports = import_stages(project)
        if update_imports and imports:
            log.info("mlops: dvc update --no-download %s", " ".join(imports))
            with source.credentials_in_env():  # a `dvc import` from a private git repository
                dvc.update_imports(root, list(imports))
            project = load_project(root)
        inputs = inputs_fingerprint(project)
        if inputs is None:
            log.info(
                "mlops: cannot tell from the checkout whether anything changed (%s): building",
                "; ".join(unknowable_inputs(project)),
            )
        elif skip_unchanged and model_name:
            held = alias_version_tags(uri, model_name, alias)
            if held and held[1].get(INPUTS_TAG) == inputs:
                version, tags = held
                unchanged = PipelineRun(
                    "",
                    uri,
                    commit,
                    tags.get(OUTPUTS_TAG) or outputs_fingerprint(project),
                    False,
                    unchanged_since=version,
                    source=source.as_xcom(),
                    inputs=inputs,
                )
                log.info("mlops: %s", unchanged.summary)
                return unchanged
        # Preflight, before the first write (the MLflow run): the DVC remote answers, and with
        # commit_lock the branch takes promote's push (a read-only dry run) with these credentials.
        dvc.check_remote_answers(root, remote, endpoint)
        if commit_lock:
            with source.credentials_in_env():
                git.check_push_allowed(project.git_root, "origin", source.repo.branch)
        tags = {"mlops.kind": SCHEDULED_KIND, "mlops.git_commit": commit, **(run_tags or {})}
        if inputs is not None:
            tags[INPUTS_TAG] = inputs
        run = open_run(uri, experiment or project_name(root), f"{SCHEDULED_KIND}-{commit[:8]}", tags)
        try:
            ran = _reproduce(project, plan, run, remote, endpoint)
            built = load_project(root)
            hashes = {out.path: out.md5 for out in built.outs if out.md5}
            _push_and_verify(built, remote, endpoint, hashes)
            metrics = _read_metrics(built, remote, endpoint)
        except BaseException as error:
            # Best effort: ending the run never hides why it failed (Airflow's task kill is KILLED).
            status = "FAILED" if isinstance(error, Exception) else "KILLED"
            with contextlib.suppress(Exception):
                finish_run(run, tags={"mlops.verdict": "build-failed"}, status=status)
            raise
        fingerprint = outputs_fingerprint(built)
        finish_run(
            run,
            metrics=metrics,
            tags={
                "mlops.stages_ran": ",".join(ran) or "none",
                OUTPUTS_TAG: fingerprint,
                **{f"{OUT_MD5_PREFIX}{path}": md5 for path, md5 in hashes.items()},
            },
            # the outs git keeps, and the imports' .dvc files `dvc update` may have rewritten: the
            # lock's hashes name their contents
            artifacts={
                LOCK_ARTIFACT: lock_record(
                    root, built.lockfiles, [*built.git_kept_outs, *import_stages(built)], commit, hashes
                )
            },
        )
    result = PipelineRun(
        "",
        uri,
        commit,
        fingerprint,
        True,
        run.run_id,
        run.experiment_id,
        ran,
        metrics,
        source=source.as_xcom(),
        inputs=inputs,
    )
    log.info("mlops: %s", result.summary)
    return result


def _reproduce(project: Project, plan: RebuildPlan | None, run: TrackedRun, remote: str, endpoint: str) -> tuple:
    """Pull what the stages that run need, and run them; the stages that ran, as DVC named them."""
    root, env = project.root, run_environment(run)
    if plan is None:
        # Unchanged stages are skipped although their data is not here (--allow-missing); a stage
        # that runs pulls what it lacks (--pull).
        output = dvc.repro(root, [], ["--pull", "--allow-missing"], env)
        return tuple(STAGE_RAN.findall(output))
    upstream = stages_repro_would_run(project, plan.upstream) if plan.upstream else ()  # before the pull
    if plan.pull_targets:
        dvc.pull(root, list(plan.pull_targets), remote, endpoint)
    output = dvc.repro(root, list(plan.upstream), ["--pull", "--allow-missing"], env) if upstream else ""
    output += dvc.repro(root, list(plan.forced), ["--force", "--downstream"], env)
    return tuple(STAGE_RAN.findall(output))


def _push_and_verify(project: Project, remote: str, endpoint: str, hashes: dict[str, str]) -> None:
    """Push the cached outs this checkout holds, then refuse to hand on unless every cached out
    the lock records is on the remote: the next task, on another worker, can only pull."""
    root = project.root
    cached = [out for stage in project.pipeline_stages for out in stage.outs if out.cached and out.md5]
    present = [out.path for out in cached if (root / out.path).exists()]
    if present:
        dvc.push(root, present, remote, endpoint)
    recorded = {out.path: hashes[out.path] for out in cached if out.path in hashes}
    checked = verify_pushed(root, remote, endpoint, recorded)
    log.info("mlops: on '%s': %s", remote, checked.detail)
    missing = list(checked.missing)
    if not missing:
        return
    listed = ", ".join(missing[:10])
    if any(path in present for path in missing):
        raise InfrastructureError(f"after `dvc push`, {listed} is still not on {endpoint}", endpoint=endpoint)
    raise ConfigError(
        f"dvc.lock records {listed}, which is on no remote ({endpoint}) and which this run did not rebuild; "
        "`dvc push` it from where it was built, or force its stage with force_stages"
    )


def _read_metrics(project: Project, remote: str, endpoint: str) -> dict:
    """Every declared metric; files DVC caches and this run did not rebuild are pulled first."""
    files = list(project.metrics_files)
    if not files:
        return {}
    missing = [path for path in files if not (project.root / path).is_file()]
    if missing:
        dvc.pull(project.root, missing, remote, endpoint)
    return read_metrics_files(project.root, files)
