"""Where a scheduled task finds the project: one directory every task shares (`project_dir`, one
machine), or a git repository each task checks out afresh at the run's pinned commit (`repo_url`:
Celery, Kubernetes, hosted Airflow, where consecutive tasks share no disk).

What crosses from one task to the next is `as_xcom()`: the repository, branch, folder, the
connection id and the per-worker cache folder, never a credential.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .adapters import git
from .adapters.git_checkout import GitCredentials, RepoSource, fresh_checkout, git_credentials_in_env, pin_commit


@dataclass(frozen=True)
class ProjectSource:
    """A shared directory (`project_dir`) or a repository (`repo`) to check out per task."""

    project_dir: str | None = None
    repo: RepoSource | None = None
    git_conn_id: str | None = None  # the Airflow Connection the credentials come from (not a secret)
    cache_dir: str | None = None  # a per-worker DVC cache that outlives the checkout
    credentials: GitCredentials | None = field(default=None, compare=False, repr=False)

    @property
    def checked_out_per_task(self) -> bool:
        return self.repo is not None

    def describe(self) -> str:
        return self.repo.describe() if self.repo else str(self.project_dir)

    def pin(self) -> str:
        """The commit this run works on: the branch's tip now (the first task pins it), or the
        shared directory's HEAD."""
        if self.repo is not None:
            return pin_commit(self.repo, self.credentials)
        assert self.project_dir is not None
        try:
            return git.head_commit(Path(self.project_dir))
        except Exception:  # a workspace that is not a git checkout still reproduces
            return "unknown"

    @contextlib.contextmanager
    def checkout(self, commit: str) -> Iterator[Path]:
        """The project at `commit`: a fresh checkout, removed when the block ends, or the shared
        directory as it is."""
        if self.repo is None:
            assert self.project_dir is not None
            yield Path(self.project_dir)
            return
        with fresh_checkout(self.repo, commit, self.credentials, cache_dir=self.cache_dir) as root:
            yield root

    def credentials_in_env(self):
        """The git credentials in git's environment for a block (a fetch, a push, `dvc update` of a
        git import); the checkout's other processes, the project's stages among them, never see them."""
        return git_credentials_in_env(self.credentials)

    def as_xcom(self) -> dict | None:
        if self.repo is None:
            return None
        return {
            "repo_url": self.repo.url,
            "branch": self.repo.branch,
            "subdir": self.repo.subdir,
            "git_conn_id": self.git_conn_id,
            "cache_dir": self.cache_dir,
        }

    @classmethod
    def from_xcom(cls, data: dict, credentials: GitCredentials | None) -> ProjectSource:
        return cls(
            repo=RepoSource(data["repo_url"], data["branch"], data.get("subdir") or ""),
            git_conn_id=data.get("git_conn_id"),
            cache_dir=data.get("cache_dir"),
            credentials=credentials,
        )
