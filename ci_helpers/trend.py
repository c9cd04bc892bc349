"""The trend of each gated metric over the last N main builds, read back from MLflow for the report.

Main builds are master-build's runs: tagged `mlops.kind=ci-build` and `mlops.branch=<branch>` (see
provenance.py), in the project's build experiment. A trend informs the reviewer and gates nothing:
when MLflow cannot be read, the trend says why and the verdict and exit code stay what they are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .adapters.registry import ModelVersionRef, registered_version_of_run
from .adapters.tracking import recent_build_runs
from .errors import CIHelpersError
from .metrics import MetricValue

DEFAULT_TREND_BUILDS = 10
_BRANCH_PREFIXES = re.compile(r"^(?:refs/heads/|refs/remotes/[^/]+/|origin/)")


@dataclass(frozen=True)
class TrendPoint:
    """One main build's value of a metric."""

    run_id: str
    commit: str | None
    value: float


@dataclass(frozen=True)
class MetricTrend:
    metric: str
    points: tuple[TrendPoint, ...]  # the builds that logged the metric, oldest first
    current: MetricValue  # this PR's (or this build's) value: the last point of the trend


@dataclass(frozen=True)
class NewestBuild:
    run_id: str
    experiment_id: str
    commit: str | None
    model: ModelVersionRef | None  # the registry version built from it, when the registry says


@dataclass(frozen=True)
class Trend:
    """What the report shows of the main builds; `reason` set when they could not be read."""

    branch: str | None
    experiments: tuple[str, ...]
    requested: int
    builds: int = 0  # finished main builds found (at most `requested`)
    metrics: tuple[MetricTrend, ...] = ()
    newest: NewestBuild | None = None
    tracking_uri: str = ""
    reason: str | None = None

    @property
    def available(self) -> bool:
        return self.reason is None


def branch_of_ref(ref: str | None) -> str | None:
    """The branch a baseline ref names, as builds tag it: `origin/main`, `refs/heads/main` -> `main`."""
    if not ref:
        return None
    return _BRANCH_PREFIXES.sub("", ref.strip()) or None


def read_trend(
    tracking_uri: str,
    experiments: Sequence[str],
    branch: str | None,
    gated: Sequence[str],
    current: Mapping[str, MetricValue],
    limit: int = DEFAULT_TREND_BUILDS,
    exclude_run_id: str | None = None,
    newest_model: bool = True,
    no_branch: str = "no branch to read the builds of",
) -> Trend | None:
    """The trend of each `gated` metric over the last `limit` finished builds of `branch`, with
    `current` as the last point; None when `limit` is 0 (turned off). Never raises for MLflow: a
    failure to read becomes the trend's `reason`."""
    if limit <= 0:
        return None
    names = tuple(dict.fromkeys(experiments))
    if not branch:
        return Trend(None, names, limit, tracking_uri=tracking_uri, reason=no_branch)
    try:
        builds = recent_build_runs(tracking_uri, names, branch, limit, exclude_run_id)
    except CIHelpersError as error:
        return Trend(branch, names, limit, tracking_uri=tracking_uri, reason=str(error))
    metrics = tuple(
        MetricTrend(
            metric,
            tuple(
                TrendPoint(build.run_id, build.commit, build.metrics[metric])
                for build in builds
                if metric in build.metrics and math.isfinite(build.metrics[metric])
            ),
            current.get(metric),
        )
        for metric in dict.fromkeys(gated)
    )
    newest = None
    if builds:
        last = builds[-1]
        model = registered_version_of_run(tracking_uri, last.run_id) if newest_model else None
        newest = NewestBuild(last.run_id, last.experiment_id, last.commit, model)
    return Trend(branch, names, limit, len(builds), metrics, newest, tracking_uri)
