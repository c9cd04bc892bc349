"""SIGTERM and SIGINT (a cancelled job, `timeout-minutes`, a concurrency group, GitLab, an Airflow
task kill): stop the child processes, then unwind the command so that its failure path ends the
MLflow run KILLED and says what was done. The command exits 128 + the signal's number.

The handler raises SignalReceived, a BaseException, so that no `except Exception` on the way can
swallow it; the flows turn it into `Cancelled`. While a failure path runs (`shielded`), a signal is
recorded but raises nothing, so that the cleanup is never cut short by a second signal.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import Cancelled

HANDLED = (signal.SIGTERM, signal.SIGINT)


class SignalReceived(BaseException):
    """Raised in the main thread when SIGTERM or SIGINT arrives."""

    def __init__(self, signum: int, stopped: tuple[str, ...] = ()) -> None:
        super().__init__(signum)
        self.signum = signum
        self.stopped = stopped


_state: dict[str, object] = {"received": None, "shield": 0}


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def cancelled(received: SignalReceived) -> Cancelled:
    """The error a signal ends the command with. A flow that wrote something rewords it with what
    it did and did not do (BuildProgress.explained)."""
    stopped = f" (stopped {', '.join(received.stopped)})" if received.stopped else ""
    return Cancelled(
        f"cancelled by {signal_name(received.signum)}{stopped}: done: nothing that a re-run would not redo; "
        "not done: the command's work: re-run it",
        received.signum,
    )


def _on_signal(signum: int, frame) -> None:
    first = _state["received"] is None
    if first:
        _state["received"] = signum
    from .adapters.runner import stop_children

    # every time: a child started since is stopped too. A short grace: GitHub sends SIGKILL 10 s
    # after its first signal, and the run must still be ended and the record printed.
    stopped = tuple(stop_children(signum, grace_seconds=3.0))
    if first and not _state["shield"]:
        raise SignalReceived(signum, stopped)


@contextmanager
def cancellable() -> Iterator[None]:
    """Run the block with SIGTERM and SIGINT turned into SignalReceived (main thread only; the
    previous handlers come back afterwards)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    from .adapters.runner import allow_children

    previous = {signum: signal.getsignal(signum) for signum in HANDLED}
    _state.update(received=None, shield=0)
    allow_children()
    for signum in HANDLED:
        signal.signal(signum, _on_signal)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        allow_children()  # the command is over: the next one in this process (a test's) may start children


@contextmanager
def shielded() -> Iterator[None]:
    """A failure path: a signal that arrives now stops the children but does not interrupt it."""
    _state["shield"] = int(_state["shield"]) + 1  # type: ignore[call-overload]
    try:
        yield
    finally:
        _state["shield"] = int(_state["shield"]) - 1  # type: ignore[call-overload]


@contextmanager
def deferred() -> Iterator[None]:
    """A block a signal must not cut in two (a run created but not yet recorded): a signal that
    arrives in it is raised right after it."""
    before = _state["received"]
    with shielded():
        yield
    if before is None and isinstance(_state["received"], int):
        raise SignalReceived(_state["received"])


def received_signal() -> int | None:
    """The signal that arrived during this command, if any (even one that a shield held back)."""
    value = _state["received"]
    return value if isinstance(value, int) else None
