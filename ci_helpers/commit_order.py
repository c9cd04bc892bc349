"""Which of two commits is newer, in git's own history: the order aliases move in.

A main build's checkout is often shallow; a commit it lacks (the alias holder's) is fetched from
the remote, and the history deepened once, before git is asked.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .adapters import git
from .adapters.runner import CommandError
from .errors import InfrastructureError


def ancestry(root: Path, remote: str) -> Callable[[str, str], bool]:
    """is_ancestor(old, new): True when `old` is `new` or in its history."""
    answers: dict[tuple[str, str], bool] = {}
    state = {"deepened": False}
    url = git.remote_url(root, remote) or remote
    endpoint = f"git remote '{remote}' ({url})"

    def complete_history() -> None:
        if state["deepened"]:
            return
        state["deepened"] = True
        if git.git(root, "rev-parse", "--is-shallow-repository").strip() == "true":
            git.git(root, "fetch", "-q", "--unshallow", remote, retry=True, endpoint=endpoint)

    def ensure(commit: str) -> None:
        if git.has_commit(root, commit):
            return
        try:
            git.git(root, "fetch", "-q", remote, commit, retry=True, endpoint=endpoint)
        except CommandError as error:
            raise InfrastructureError(
                f"cannot fetch commit {commit[:12]} from {endpoint} to order the alias move: {error}",
                endpoint=endpoint,
            ) from None

    def is_ancestor(old: str, new: str) -> bool:
        if old == new:
            return True
        if (old, new) not in answers:
            for commit in (old, new):
                ensure(commit)
            complete_history()
            try:
                git.git(root, "merge-base", "--is-ancestor", old, new)
                answers[(old, new)] = True
            except CommandError as error:
                if error.returncode != 1:
                    raise
                answers[(old, new)] = False
        return answers[(old, new)]

    return is_ancestor
