"""Where a scheduled task finds the project when consecutive tasks share no disk (`repo_url`:
Celery, Kubernetes, hosted Airflow): a git repository each task checks out afresh at the run's
pinned commit. (`project_dir`, one machine, needs none of this: every task uses that directory.)

What crosses from one task to the next is `as_xcom()`: the repository, branch, folder, the
connection id and the per-worker cache folder, never a credential.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .adapters.git_checkout import GitCredentials, RepoSource, fresh_checkout, git_credentials_in_env, pin_commit


@dataclass(frozen=True)
class ProjectSource:
    """A repository (`repo`) every task checks out for itself."""

    repo: RepoSource
    git_conn_id: str | None = None  # the Airflow Connection the credentials come from (not a secret)
    cache_dir: str | None = None  # a per-worker DVC cache that outlives the checkout
    credentials: GitCredentials | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        return self.repo.describe()

    def pin(self) -> str:
        """The commit this run works on: the branch's tip now (the first task pins it)."""
        return pin_commit(self.repo, self.credentials)

    def checkout(self, commit: str):
        """The project at `commit`: a fresh checkout, removed when the block ends."""
        return fresh_checkout(self.repo, commit, self.credentials, cache_dir=self.cache_dir)

    def credentials_in_env(self):
        """The git credentials in git's environment for a block (a fetch, a push, `dvc update` of a
        git import); the checkout's other processes, the project's stages among them, never see them."""
        return git_credentials_in_env(self.credentials)

    def as_xcom(self) -> dict:
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
            RepoSource(data["repo_url"], data["branch"], data.get("subdir") or ""),
            git_conn_id=data.get("git_conn_id"),
            cache_dir=data.get("cache_dir"),
            credentials=credentials,
        )
