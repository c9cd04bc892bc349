"""GitHub Actions I/O: outputs, step summary, annotations, groups, masks.

Workflow commands go through github-action-utils; outside Actions everything degrades to
plain stderr/stdout so a local run reads the same information.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from .redact import RedactingStream, redact


def in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


# The runner's files a command writes its results to: GitHub's step outputs and job summary, and
# the dotenv report the GitLab components turn the outputs into.
RUNNER_FILES = ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "CI_HELPERS_DOTENV_REPORT")


def unwritable_runner_files() -> list[str]:
    """'$NAME (path): why' for each runner file that is set but cannot be appended to. Checked by
    opening it for append, as the real write will: permissions, a read-only mount, a folder."""
    problems = []
    for name in RUNNER_FILES:
        path = os.environ.get(name)
        if not path:
            continue
        try:
            with open(path, "a", encoding="utf-8"):
                pass
        except OSError as error:
            problems.append(f"${name} ({path}): {error.strerror or error}")
    return problems


def set_outputs(values: Mapping[str, object]) -> None:
    """Write step outputs (multi-line safe) when $GITHUB_OUTPUT is set; otherwise do nothing."""
    if not os.environ.get("GITHUB_OUTPUT"):
        return
    import github_action_utils as gha

    for name, value in values.items():
        gha.set_output(name, redact(value if isinstance(value, str) else _as_text(value)))


def _as_text(value: object) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else str(value)


def write_summary(markdown: str) -> None:
    """Append to the job summary when $GITHUB_STEP_SUMMARY is set; print it otherwise."""
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        import github_action_utils as gha

        gha.append_job_summary(redact(markdown))
    else:
        sys.stdout.write(redact(markdown) + "\n")


def error(message: str, title: str | None = None) -> None:
    """An ::error:: annotation on Actions; a plain `error:` line on stderr elsewhere."""
    _annotate("error", message, title)


def warning(message: str, title: str | None = None) -> None:
    """A ::warning:: annotation on Actions; a plain `warning:` line on stderr elsewhere."""
    _annotate("warning", message, title)


def _annotate(level: str, message: str, title: str | None) -> None:
    message = redact(message)
    if in_actions():
        import github_action_utils as gha

        getattr(gha, level)(message, title=title)
    else:
        sys.stderr.write(f"{level}: {message}\n")


def mask(value: str) -> None:
    """Tell the runner to hide `value`; written past the redacting stream, which would hide it
    from the runner too."""
    if in_actions() and value:
        stream = sys.stdout.unredacted if isinstance(sys.stdout, RedactingStream) else sys.stdout
        stream.write(f"::add-mask::{value}\n")
        stream.flush()


def mask_known_secrets() -> None:
    """On Actions, tell the runner to hide every known secret value from the log."""
    if in_actions():
        from .redact import secret_values

        for value in secret_values():
            mask(value)


@contextmanager
def group(title: str) -> Iterator[None]:
    """A collapsible ::group:: on Actions, a `==> title` header elsewhere."""
    if in_actions():
        print(f"::group::{title}", flush=True)
        try:
            yield
        finally:
            print("::endgroup::", flush=True)
    else:
        sys.stderr.write(f"==> {title}\n")
        sys.stderr.flush()
        yield
