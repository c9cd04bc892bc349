"""The plan for a forced CI rebuild: which stages run, which are reused, and what to pull."""

from __future__ import annotations

from dataclasses import dataclass

from .project import Project


@dataclass(frozen=True)
class RebuildPlan:
    """What a forced rebuild touches: stages forced, downstream, upstream, and what to pull."""

    forced: tuple[str, ...]
    downstream: tuple[str, ...]
    upstream: tuple[str, ...]
    pull_targets: tuple[str, ...]  # inputs of the rebuilt stages, never their own outputs
    rebuilt_outputs: tuple[str, ...]
    rebuilt_cached_outputs: tuple[str, ...]

    @property
    def rebuilt(self) -> tuple[str, ...]:
        return self.forced + self.downstream


def plan_rebuild(project: Project, stages: list[str] | tuple[str, ...], option: str = "--stage") -> RebuildPlan:
    """Force `stages` (DVC names; a foreach group means all its items) and everything downstream.

    Their inputs made elsewhere (upstream stages, `.dvc` files) are pulled when DVC caches them;
    git-tracked inputs are already in the checkout.
    """
    forced = project.resolve_stages(stages, option)
    downstream = project.downstream_of(forced)
    rebuild = set(forced) | set(downstream)
    upstream = project.upstream_of(tuple(rebuild))
    order = project.stage_names
    rebuilt_outs = [out for name in order if name in rebuild for out in project.stage(name).outs]
    pull: list[str] = []
    for name in order:
        if name not in rebuild:
            continue
        for dep in project.stage(name).deps:
            made_by = project.out_covering(dep)
            if made_by is not None and made_by.stage not in rebuild and made_by.cached and dep not in pull:
                pull.append(dep)
    return RebuildPlan(
        tuple(n for n in order if n in forced),
        tuple(n for n in order if n in downstream),
        tuple(n for n in order if n in upstream and not project.stage(n).is_data_source),
        tuple(pull),
        tuple(out.path for out in rebuilt_outs),
        tuple(out.path for out in rebuilt_outs if out.cached),
    )
