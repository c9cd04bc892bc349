"""`dvc pull` in-process, through the Repo the command already read (shared_repo): no second
Python, no second DVC import and no second index build.

What the `dvc pull` subprocess gave is kept: DVC's messages and progress on stderr (redacted), its
failures told apart from the words it logs (a transient one is retried, rejected credentials are
exit 2: `dvc._on_remote` decides, as for the other in-process calls on the remote), and a signal
that ends the command at once. DVC swallows each failed transfer into a count
(DownloadError: "N files failed to download") and logs the reason; the reason is what a user and
the classification need, so the records are kept and the failure carries them (TransferFailed).
"""

from __future__ import annotations

import concurrent.futures.thread
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

from .redact import redact

# DVC's loggers: what `dvc pull` prints comes through them (dvc.logger.setup).
_DVC_LOGGERS = ("dvc", "dvc_objects", "dvc_data")
_KEPT_RECORDS = 20


class TransferFailed(Exception):
    """Raised when DVC's pull fails: its error, with the errors it logged on the way (the first of
    them, with its exception, as the cause)."""


class _DvcMessages(logging.Handler):
    """Shows DVC's records on stderr as `dvc pull` prints them (`ERROR: msg - cause`, no traceback),
    redacted, and keeps its warnings and errors for the failure's message."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        from dvc.logger import ColorFormatter

        self.setFormatter(ColorFormatter(log_colors=False))
        self.kept: list[str] = []
        self.causes: list[BaseException] = []
        self.muted = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.muted:  # an abandoned pull (a signal) says nothing more
            return
        try:
            text = redact(self.format(record))
        except Exception:  # a record that cannot be formatted is not worth a failure
            return
        if record.levelno >= logging.WARNING:
            if len(self.kept) < _KEPT_RECORDS:
                self.kept.append(" ".join(text.split()))
            if record.exc_info and record.exc_info[1] is not None and len(self.causes) < _KEPT_RECORDS:
                self.causes.append(record.exc_info[1])
        from dvc.progress import Tqdm

        Tqdm.write(text, file=sys.stderr)  # between progress bars, as DVC writes its own


@contextlib.contextmanager
def _dvc_messages() -> Iterator[_DvcMessages]:
    """DVC's records shown and kept while the block runs; DVC's loggers at INFO as under `dvc`
    (its progress bars show only then), nothing propagated (no traceback from Python's last resort)."""
    handler = _DvcMessages()
    loggers = [logging.getLogger(name) for name in _DVC_LOGGERS]
    before = [(logger.level, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    try:
        yield handler
    finally:
        for logger, (level, propagate) in zip(loggers, before, strict=True):
            logger.setLevel(level)
            logger.propagate = propagate
            if not handler.muted:  # an abandoned pull keeps a muted handler: no last-resort tracebacks
                logger.removeHandler(handler)


def _failure(error: BaseException, messages: _DvcMessages) -> TransferFailed:
    said = " ".join(str(error).split()) or type(error).__name__
    logged = [line for line in messages.kept if said not in line]
    text = f"failed to pull data from the cloud - {said}"
    if logged:
        text += f" ({'; '.join(logged[:3])})"
    failed = TransferFailed(redact(text))
    # the chain a full disk or a rejection is recognised from: what DVC logged first, then its error
    failed.__cause__ = messages.causes[0] if messages.causes else error
    failed.__context__ = error
    return failed


def _summary(result: dict[str, Any], root: str) -> str:
    """What `dvc pull` prints when it is done: the workspace's changes (named from the project's
    root, where `dvc pull` ran), then the counts."""
    from dvc.utils.humanize import get_summary

    def named(entry: str) -> str:
        path = os.path.relpath(os.path.abspath(entry), root)  # DVC names them from the cwd
        return path + os.sep if entry.endswith(os.sep) else path

    stats = result.get("stats") or {}
    lines = [
        f"{state[0].upper()}\t{named(entry)}"
        for state in ("modified", "added", "deleted")
        for entry in result.get(state) or ()
    ]
    return "\n".join([*lines, get_summary(stats.items()) or "Everything is up to date."])


def pull_with(dvc_repo: Any, targets: list[str], remote: str, jobs: int | None = None) -> None:
    """`dvc pull --remote REMOTE TARGETS` with the open Repo `dvc_repo`; TransferFailed when DVC
    fails (its own exceptions, and every failure it only logged).

    DVC runs on a thread of its own while this (the main) thread waits: a signal's exception
    (cancellation) is raised here at once, not after DVC's thread pool has finished the requests
    it holds; the abandoned pull is then left to the end of the process (see _abandon)."""
    from dvc.exceptions import DvcException

    outcome: dict[str, Any] = {}
    pools_before = set(_pool_threads())

    def work() -> None:
        try:
            outcome["result"] = _locked_pull(dvc_repo, targets, remote, jobs)
        except BaseException as error:  # handed to the waiting thread
            outcome["error"] = error

    with _dvc_messages() as messages:
        worker = threading.Thread(target=work, name="ci-helpers-dvc-pull", daemon=True)
        try:
            worker.start()
            while worker.is_alive():
                worker.join(0.2)  # woken by a signal: its handler raises here
        except BaseException:
            messages.muted = True
            _abandon(pools_before)
            raise
        error = outcome.get("error")
        if isinstance(error, DvcException):
            result = getattr(error, "result", None)
            if result:
                sys.stderr.write(redact(_summary(result, dvc_repo.root_dir)) + "\n")
            raise _failure(error, messages)
        if error is not None:
            raise error
        sys.stderr.write(redact(_summary(outcome["result"], dvc_repo.root_dir)) + "\n")


def _locked_pull(dvc_repo: Any, targets: list[str], remote: str, jobs: int | None) -> dict[str, Any]:
    """Repo.pull under DVC's lock, taken here: its own (`lock_repo`) would drop the index the
    project model built before the pull even starts."""
    # absolute: DVC resolves a relative target against the cwd, `dvc pull` ran in the project
    absolute = [os.path.join(dvc_repo.root_dir, target) for target in targets]
    with dvc_repo.lock:
        dvc_repo._lock_depth += 1
        try:
            return dvc_repo.pull(targets=absolute, remote=remote, jobs=jobs)
        finally:
            dvc_repo._lock_depth -= 1
            dvc_repo._reset()  # what DVC does when it lets the lock go: the index is stale now


def _pool_threads() -> list[threading.Thread]:
    # concurrent.futures joins every pool thread when the interpreter exits
    return list(getattr(concurrent.futures.thread, "_threads_queues", {}))


def _abandon(before: set[threading.Thread]) -> None:
    """The command is ending (a signal): the pool threads DVC started for this pull hold requests
    that may take minutes (a slow server). They are not joined at exit, so that the process ends
    now, as `dvc pull` stopped by a signal did; they are daemons (started from a daemon thread)."""
    queues = getattr(concurrent.futures.thread, "_threads_queues", None)
    if queues is None:
        return
    for thread in _pool_threads():
        if thread not in before and thread.daemon:
            queues.pop(thread, None)
