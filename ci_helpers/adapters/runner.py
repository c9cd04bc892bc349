"""The one subprocess runner for dvc and git: capture, bounded retries, clear failures."""

from __future__ import annotations

import os
import re
import secrets
import select
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import Cancelled, CIHelpersError, InfrastructureError
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
        with _child(args, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
            stdout, stderr = _communicate(process)
        if process.returncode != 0:
            raise CommandError(args, process.returncode, stderr + stdout)
        return CommandResult(tuple(args), stdout, stderr)
    # Streaming: the tool's own progress shown live (redacted), only a tail kept for the error message.
    with (
        _workflow_commands_stopped(),
        _child(args, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process,
    ):
        output = _pump(process)
    if process.returncode != 0:
        raise CommandError(args, process.returncode, output)
    return CommandResult(tuple(args), output, "")


# Streaming: read this much at a time; keep this much of the end for the error message.
CHUNK_BYTES = 1 << 16
TAIL_BYTES = 1 << 16
TAIL_KEPT_LINES = 200
# A line longer than this (no newline yet) is shown in pieces, cut where no secret can straddle.
LONG_LINE_BYTES = 1 << 20


def _pump(process: subprocess.Popen) -> str:
    """Copy the child's output to our stderr in chunks, redacted (a secret is never split: a chunk
    is shown up to its last newline), and return the last lines of it."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    show = _stderr_writer()
    poller = select.poll() if hasattr(select, "poll") else None
    if poller is not None:
        poller.register(fd, select.POLLIN)
    tail, pending = bytearray(), b""
    while True:
        if poller is not None and not poller.poll(1000):
            if _stop_signal:
                break  # the children are stopped; an orphan of theirs may still hold the pipe
            continue
        chunk = os.read(fd, CHUNK_BYTES)
        if not chunk:
            break
        tail += chunk
        if len(tail) > 2 * TAIL_BYTES:
            del tail[:-TAIL_BYTES]
        data = pending + chunk
        cut = _shown_up_to(data)
        if cut:
            show(data[:cut])
        pending = data[cut:]
    if pending:
        show(pending)
    process.wait()
    text = bytes(tail[-TAIL_BYTES:]).decode("utf-8", "replace")
    lines = text.splitlines(keepends=True)
    if len(tail) > TAIL_BYTES and len(lines) > 1:
        lines = lines[1:]  # the first one was cut
    return redact("".join(lines[-TAIL_KEPT_LINES:]))  # it reaches messages, reports, run tags


def _shown_up_to(data: bytes) -> int:
    """How much of `data` can be shown now: up to its last newline; a line too long to wait for is
    cut at its last blank, else before any secret or URL that would straddle the cut."""
    newline = data.rfind(b"\n")
    if newline != -1:
        return newline + 1
    if len(data) < LONG_LINE_BYTES:
        return 0
    blank = max(data.rfind(b" "), data.rfind(b"\t"), data.rfind(b"\r"))
    if blank != -1:
        return blank + 1
    cut = len(data) - _OVERLAP
    while True:  # move the cut back to the start of whatever it would split
        starts = [found for value in _secret_bytes() if -1 < (found := _straddling(data, value, cut)) < cut]
        starts += [
            url.start() for url in _URL_START.finditer(data, max(0, cut - _OVERLAP)) if url.start() < cut <= url.end()
        ]
        if not starts:
            return cut
        if min(starts) <= 0:  # a 1 MB "URL": bounded memory wins
            return len(data) - _OVERLAP
        cut = min(starts)


_OVERLAP = 4096  # longer than any secret or URL credentials
# A URL up to its "@", or up to the end of what has come so far (its "@" may be in the next chunk).
_URL_START = re.compile(rb"(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]*://[^/@\s]*")


def _straddling(data: bytes, value: bytes, cut: int) -> int:
    """Where `value` starts when it holds position `cut`, else -1."""
    return data.find(value, max(0, cut - len(value) + 1), cut + len(value) - 1)


def _secret_bytes() -> list[bytes]:
    from .redact import secret_values

    return [value.encode() for value in secret_values()]


def _stderr_writer() -> Callable[[bytes], None]:
    """Writes bytes to our stderr, redacted once: straight to the binary stream underneath the
    CLI's redacting one when there is one (the child's bytes pass through undecoded)."""
    stream = sys.stderr
    text_layer = getattr(stream, "unredacted", stream)
    binary = getattr(text_layer, "buffer", None)

    def write(data: bytes) -> None:
        if binary is None:
            stream.write(redact(data.decode("utf-8", "replace")))
            return
        text_layer.flush()  # what was printed before comes first
        binary.write(redact(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape"))
        binary.flush()

    return write


def _communicate(process: subprocess.Popen) -> tuple[str, str]:
    """The child's whole stdout and stderr; after stop_children, what it printed until then."""
    while True:
        try:
            stdout, stderr = process.communicate(timeout=1.0)
            break
        except subprocess.TimeoutExpired:
            if _stop_signal and process.poll() is not None:
                stdout, stderr = b"", b""  # an orphan of the stopped child still holds its pipes
                break
    return _text(stdout), _text(stderr)


def _text(data: bytes | None) -> str:
    """Decoded with universal newlines, as `text=True` would (git's progress ends lines in "\\r")."""
    return (data or b"").decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")


# The children running now (pid -> (process, short command)), for stop_children. A plain dict: a
# signal handler runs in the main thread between bytecodes, so it needs no lock.
_running: dict[int, tuple[subprocess.Popen, str]] = {}
_stop_signal: list[int] = []  # [the signal] once stop_children ran: no new child starts
_NEW_GROUP = {"start_new_session": True} if os.name == "posix" else {}


@contextmanager
def _child(args: Sequence[str], **popen: object) -> Iterator[subprocess.Popen]:
    """Start a command in a process group of its own (stop_children stops it and all its
    descendants), registered while it runs; Cancelled if it was or gets stopped by a signal."""
    if _stop_signal:
        raise _cancelled(args)
    process = subprocess.Popen(list(args), **_NEW_GROUP, **popen)  # type: ignore[call-overload]
    _running[process.pid] = (process, _short(args))
    try:
        if _stop_signal:  # the signal came while it started
            _stop_groups([process], _stop_signal[0], 1.0)
        yield process
    except BaseException:
        # KeyboardInterrupt without a handler, a bug: the child, in its own session, would run on
        if process.poll() is None:
            _stop_groups([process], signal.SIGTERM, 5.0)
        raise
    finally:
        _running.pop(process.pid, None)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        process.wait()  # at once: it ended, or stop_children stopped it
    if _stop_signal:
        raise _cancelled(args)


def _short(args: Sequence[str]) -> str:
    command = redact(shlex.join(args))
    return command if len(command) <= 120 else command[:117] + "..."


def _cancelled(args: Sequence[str]) -> Cancelled:
    signum = _stop_signal[0] if _stop_signal else signal.SIGTERM
    return Cancelled(f"`{_short(args)}` was stopped by {signal.Signals(signum).name}", signum)


def allow_children() -> None:
    """A new command in a long-lived process (a test's CliRunner, an Airflow worker) may start
    children again after an earlier one was stopped."""
    _stop_signal.clear()


def stop_children(signum: int, grace_seconds: float = 10.0) -> list[str]:
    """Stop every running child with all its descendants: `signum` (SIGTERM, SIGINT) to each one's
    process group, SIGKILL to what is left after `grace_seconds`. Returns their commands (redacted).

    Callable from a signal handler in the main thread, and again. From then on the interrupted
    `run` raises Cancelled (exit 128 + signum, never retried), and so does any later `run`."""
    if not _stop_signal:
        _stop_signal.append(signum)
    children = list(_running.values())
    _stop_groups([process for process, _ in children], signum, grace_seconds)
    return [command for _, command in children]


def _stop_groups(processes: list[subprocess.Popen], signum: int, grace_seconds: float) -> None:
    for process in processes:
        _signal_group(process, signum)
    left = _wait_gone(processes, grace_seconds)
    for process in left:
        _signal_group(process, signal.SIGKILL)
    _wait_gone(left, 2.0)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        if _NEW_GROUP:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
    except (ProcessLookupError, PermissionError):
        pass  # already gone (a zombie leader, reaped elsewhere, or a reused id we must not touch)


def _wait_gone(processes: list[subprocess.Popen], seconds: float) -> list[subprocess.Popen]:
    """Polls until every group is gone or `seconds` pass; returns those still alive."""
    deadline = time.monotonic() + seconds
    left = [process for process in processes if _group_alive(process)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [process for process in left if _group_alive(process)]
    return left


def _group_alive(process: subprocess.Popen) -> bool:
    """Whether a process of the child's group still runs (a zombie does not count)."""
    process.poll()  # reaps the leader when nobody else is waiting for it (non-blocking)
    if not _NEW_GROUP:
        return process.returncode is None
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _live_member(process.pid) if os.path.isdir("/proc/self") else process.returncode is None


def _live_member(group: int) -> bool:
    """Linux: whether a process of `group` is not a zombie (one an interrupted wait has yet to reap)."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and int(fields[2]) == group and fields[0] != b"Z":
            return True
    return False


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
