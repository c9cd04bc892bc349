"""What a raised exception stands for at a command's edge: its documented error, or a bug.

One place decides it for every flow and for the CLI, so that a full disk, a signal or a domain
error ends the same way wherever it surfaces.
"""

from __future__ import annotations

from pathlib import Path

from .cancellation import SignalReceived, cancelled
from .disk_space import default_candidates, disk_full_error
from .errors import CIHelpersError


def domain_error(error: BaseException, repo: Path | None = None) -> CIHelpersError | None:
    """Cancelled for a signal, RunnerResourceExhausted for a full disk (whatever raised it: our
    own write, a command, a stage, MLflow's sqlite store), the error itself for any other
    CIHelpersError; None for anything else, which is a bug in ci-helpers."""
    if isinstance(error, SignalReceived):
        return cancelled(error)
    try:
        full = disk_full_error(error, lambda: default_candidates(repo))
    except Exception:  # telling a full disk must never replace the error it looks at
        full = None
    if full is not None:
        return full
    return error if isinstance(error, CIHelpersError) else None
