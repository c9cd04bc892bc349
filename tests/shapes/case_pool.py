"""Run a module's slow, side-effecting test cases two at a time, while pytest itself runs its tests one at a time.

The first test of a module asks its `case_runs` fixture for its result; the fixture has by then
submitted every selected case of that module to a pool of `workers` threads (each case runs
`ci-helpers`/`dvc` as child processes, so two cases use the two cores). Each test then asserts on
its own case's record, so a failure still names the case that failed.

Under pytest-xdist a worker's `session.items` holds every collected test, not only those it will
run, so a module with a case pool must run whole on one worker: `--dist loadfile`, which
pyproject.toml's addopts set (with `--dist load` two workers would each run all of its cases).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

CaseRunner = Callable[[int, dict], object]  # (case index, the test's parameters) -> its record


def submit_module_cases(
    request: pytest.FixtureRequest, runners: dict[str, CaseRunner], workers: int = 2
) -> Iterator[dict[str, Future]]:
    """Yield nodeid -> Future of the record, for every selected test of the requesting module
    whose function name is a key of `runners`; shut the pool down afterwards."""
    pool = ThreadPoolExecutor(max_workers=workers)
    futures = {
        item.nodeid: pool.submit(runners[item.originalname], index, dict(item.callspec.params))
        for index, item in enumerate(request.session.items)
        if getattr(item, "originalname", None) in runners and item.module is request.module
    }
    try:
        yield futures
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
