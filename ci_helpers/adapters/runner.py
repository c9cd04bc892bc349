"""The one subprocess runner for dvc and git: capture, bounded retries, clear failures."""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import CIHelpersError, InfrastructureError
from .redact import redact

# Output fragments that mean "the other end was unreachable", worth another attempt.
TRANSIENT_MARKERS = (
    "connection refused",
    "could not connect",
    "connect timeout",
    "connecttimeout",
    "endpointconnectionerror",
    "connection reset",
    "connection aborted",
    "timed out",
    "temporary failure in name resolution",
    "service unavailable",
    "slowdown",
    "max retries exceeded",
    "unable to access",
    "could not read from remote repository",
    "failed to connect",
)
TAIL_LINES = 15


class CommandError(CIHelpersError):
    """Raised when a dvc or git command exits non-zero for a reason that is not transient."""

    exit_code = 1

    def __init__(self, args: Sequence[str], returncode: int, output: str) -> None:
        self.command = shlex.join(args)
        self.returncode = returncode
        self.output = output
        tail = "\n".join(output.strip().splitlines()[-TAIL_LINES:])
        super().__init__(redact(f"`{self.command}` exited {returncode}:\n{tail}"))

    @property
    def transient(self) -> bool:
        return is_transient_text(self.output)


def is_transient_text(text: str) -> bool:
    """Whether an error text means "the other end was unreachable", worth another attempt."""
    lowered = text.lower()
    return any(marker in lowered for marker in TRANSIENT_MARKERS)


@dataclass(frozen=True)
class CommandResult:
    """What a finished command printed."""

    args: tuple[str, ...]
    stdout: str
    stderr: str


def retry_attempts() -> int:
    """Attempts for a transient failure; CI_HELPERS_RETRY_ATTEMPTS overrides (min 1)."""
    try:
        return max(1, int(os.environ.get("CI_HELPERS_RETRY_ATTEMPTS", "3")))
    except ValueError:
        return 3


def retry_wait_seconds() -> float:
    """Initial back-off; doubles each attempt. CI_HELPERS_RETRY_WAIT overrides."""
    try:
        return max(0.0, float(os.environ.get("CI_HELPERS_RETRY_WAIT", "1.0")))
    except ValueError:
        return 1.0


def _run_once(
    args: Sequence[str], cwd: Path | None, env: dict[str, str] | None, stream: bool, unset: Sequence[str] = ()
) -> CommandResult:
    full_env = {name: value for name, value in {**os.environ, **(env or {})}.items() if name not in unset}
    if not stream:
        proc = subprocess.run(list(args), cwd=cwd, env=full_env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise CommandError(args, proc.returncode, proc.stderr + proc.stdout)
        return CommandResult(tuple(args), proc.stdout, proc.stderr)
    # Streaming: show the tool's own progress live while keeping a tail for the error message.
    tail: deque[str] = deque(maxlen=200)
    with (
        _workflow_commands_stopped(),
        subprocess.Popen(
            list(args), cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as streaming,
    ):
        assert streaming.stdout is not None
        for line in streaming.stdout:
            sys.stderr.write(redact(line))
            tail.append(line)
        returncode = streaming.wait()
    output = "".join(tail)
    if returncode != 0:
        raise CommandError(args, returncode, output)
    return CommandResult(tuple(args), output, "")


@contextmanager
def _workflow_commands_stopped() -> Iterator[None]:
    """On Actions, a tool's streamed output (a project's stage commands among it) cannot issue
    workflow commands (`::error::`, `::add-mask::`...): they are stopped until a random token."""
    if os.environ.get("GITHUB_ACTIONS") != "true":
        yield
        return
    token = secrets.token_hex(16)
    print(f"::stop-commands::{token}", file=sys.stderr, flush=True)
    try:
        yield
    finally:
        sys.stderr.flush()
        print(f"::{token}::", file=sys.stderr, flush=True)


def _is_transient(error: Exception) -> bool:
    from .auth import rejection_reason

    return isinstance(error, CommandError) and error.transient and rejection_reason(error.output) is None


def _once(
    args: Sequence[str],
    cwd: Path | None,
    env: dict[str, str] | None,
    stream: bool,
    unset: Sequence[str],
    rejected: Callable[[str], CIHelpersError] | None,
) -> CommandResult:
    try:
        return _run_once(args, cwd, env, stream, unset)
    except CommandError as error:
        from .auth import rejection_reason

        reason = rejection_reason(error.output) if rejected else None
        if reason and rejected:
            raise rejected(reason) from None
        raise


def run(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stream: bool = False,
    retry: bool = False,
    endpoint: str | None = None,
    unset: Sequence[str] = (),
    rejected: Callable[[str], CIHelpersError] | None = None,
) -> CommandResult:
    """Run a command; with retry=True, transient failures are retried with back-off (stamina).
    `unset` names environment variables the command must not see. When the output says the server
    refused the credentials, `rejected(reason)` is raised at once, never retried.

    When a transient failure outlasts the attempts, InfrastructureError names the endpoint.
    """
    import stamina
    import stamina.instrumentation

    stamina.instrumentation.set_on_retry_hooks([])  # we print our own one-line notice
    attempts = retry_attempts() if retry else 1
    wait = retry_wait_seconds()
    try:
        for attempt in stamina.retry_context(
            on=_is_transient, attempts=attempts, wait_initial=wait, wait_max=8 * wait + 0.1, wait_jitter=wait / 4
        ):
            with attempt:
                if attempt.num > 1:
                    sys.stderr.write(f"retrying `{shlex.join(args)}` (attempt {attempt.num}/{attempts})\n")
                return _once(args, cwd, env, stream, unset, rejected)
    except CommandError as error:
        if not error.transient:
            raise
        where = redact(endpoint) if endpoint else "the remote"
        raise InfrastructureError(
            f"could not reach {where} after {attempts} attempt(s): {error}", endpoint=endpoint
        ) from error
    raise AssertionError("unreachable")
