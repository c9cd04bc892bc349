"""A build's MLflow side on a thread of its own, so that `import mlflow` (2-3 s), the tracking
server's preflight check and the creation of the run overlap the DVC and git work of the main
thread (the other preflight checks, then `dvc pull`) instead of adding to it.

Python lets a thread import a submodule of a package that another thread is still initializing
(it then finds a half-made `mlflow`): the main thread touches MLflow only once the thread's
imports are done (`imported`, or `run`, which waits for the whole thread).

The order of what can fail stays the sequential one: the tracking server's check comes first, so
its error wins over any later preflight check's, and the run's creation came before the pull, so
its error wins over the pull's. Only the waiting overlaps. The run is created only once the main
thread has passed every preflight check and asked for it (`open`): preflight, then act.

A run never stays RUNNING: the failure path takes the run over (`abandon`) when it exists, and
when it is still being created, the thread ends it itself as soon as it arrives.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping

from .adapters.tracking import (
    TrackedRun,
    bound_http_retries,
    check_tracking_server,
    end_run_quietly,
    import_shared_dependencies,
    open_run,
    preload_store,
)

# On a signal, how long the failure path waits for a run being created (GitHub kills the job 10 s
# after its first signal): a run that arrives later is ended by the thread.
SIGNAL_WAIT_SECONDS = 5.0


class BackgroundTracking:
    """Check the tracking server now; open the build's run when told; hand it over once."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self._imported = threading.Event()
        self._checked = threading.Event()
        self._told = threading.Event()  # `open` or `release` was called
        self._request: tuple[str, str, dict[str, str]] | None = None
        self._check_error: BaseException | None = None
        self._open_error: BaseException | None = None
        self._run: TrackedRun | None = None
        self._abandoned_as: str | None = None
        self._lock = threading.Lock()
        bound_http_retries()  # the environment is set here, never from the thread
        import_shared_dependencies()
        # Not a daemon: an interpreter that exits waits for a run being created, which the thread
        # then ends (see `_open`), rather than leaving it RUNNING.
        self._thread = threading.Thread(target=self._work, name="mlops-tracking", daemon=False)
        self._thread.start()

    def _work(self) -> None:
        try:
            try:
                with contextlib.suppress(Exception):  # the check below, or the next import, reports it
                    preload_store(self.tracking_uri)
            finally:
                self._imported.set()
            check_tracking_server(self.tracking_uri)
        except BaseException as error:  # handed to the main thread, which raises it
            self._check_error = error
            return
        finally:
            self._checked.set()  # whatever ended the thread: nobody waits for ever
        self._told.wait()
        if self._request is not None:
            self._open(*self._request)

    def _open(self, experiment: str, run_name: str, tags: dict[str, str]) -> None:
        try:
            run = open_run(self.tracking_uri, experiment, run_name, tags)
        except BaseException as error:
            self._open_error = error
            return
        with self._lock:
            if self._abandoned_as is not None:  # the build failed meanwhile and stopped waiting
                end_run_quietly(run, self._abandoned_as)
                return
            self._run = run

    def imported(self) -> None:
        """Wait until MLflow's modules are loaded: the main thread may use MLflow from then on."""
        self._imported.wait()

    def checked(self) -> None:
        """Wait for the tracking server's check; raise its error (exit 2 or 3) if it failed."""
        self._checked.wait()
        if self._check_error is not None:
            raise self._check_error

    def open(self, experiment: str, run_name: str, tags: Mapping[str, str]) -> None:
        """Create the run (after the check, on the thread); every preflight check has passed."""
        self._request = (experiment, run_name, dict(tags))
        self._told.set()

    def release(self) -> None:
        """No run is wanted (the build stopped before it): let the thread end."""
        self._told.set()

    def join(self) -> None:
        self._thread.join()

    def run(self) -> TrackedRun:
        """The run, once created; the check's or the creation's error otherwise."""
        self._thread.join()
        self.checked()
        if self._open_error is not None:
            raise self._open_error
        assert self._run is not None, "run() before open()"
        with self._lock:
            run, self._run = self._run, None
        return run

    def first_error(self) -> BaseException | None:
        """After the thread ended: the error that came first in the sequential order, if any."""
        return self._check_error or self._open_error

    def abandon(
        self, status: str, wait: float | None, stop_waiting: Callable[[], bool] | None = None
    ) -> TrackedRun | None:
        """On a failure path: stop waiting for the thread (`wait` seconds at most; None: until it
        ends, or until `stop_waiting()`, a signal, then SIGNAL_WAIT_SECONDS more). Returns the run
        when it exists (the caller ends it); otherwise the thread ends the run `status` if it is
        still being created."""
        self.release()
        if wait is None and stop_waiting is not None:
            while self._thread.is_alive() and not stop_waiting():
                self._thread.join(0.2)
            if self._thread.is_alive():
                status, wait = "KILLED", SIGNAL_WAIT_SECONDS
        self._thread.join(wait)
        with self._lock:
            run, self._run = self._run, None
            if run is None:
                self._abandoned_as = status
        return run

    @property
    def finished(self) -> bool:
        return not self._thread.is_alive()


def preload_in_background(tracking_uri: str) -> threading.Thread:
    """Import MLflow's client and the store modules for `tracking_uri` on a thread of their own,
    while the main thread waits on DVC (pull, evaluation): the run logged at the end then finds
    them loaded. Pure imports: nothing is created or asked, and a failure is left to the real
    import to report. The caller joins the thread before it touches MLflow itself."""

    def preload() -> None:
        with contextlib.suppress(Exception):  # the import that needs MLflow reports it
            preload_store(tracking_uri)

    bound_http_retries()  # the environment is set here, never from the thread
    import_shared_dependencies()
    thread = threading.Thread(target=preload, name="mlops-mlflow-import", daemon=False)
    thread.start()
    return thread
