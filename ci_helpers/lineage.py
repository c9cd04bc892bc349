"""Where a registered model version came from, as `trace` shows it: the version, its run, the commit,
the pull request that brought it in, the data it was built from, the CI run and every move of the
model's aliases. Frozen facts only; reading them is flows/trace's, rendering report/trace's."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ConfigError
from .registry_names import validate_alias, validate_model_name

UNKNOWN = "unknown"
OUTSIDE_MOVE = "moved outside mlops-actions (not recorded)"

# Whether the DVC remote holds an object: said only after asking it.
HELD = "held"
NOT_HELD = "not held"
NOT_CHECKED = "not checked"


@dataclass(frozen=True)
class VersionSpec:
    """MODEL, MODEL@ALIAS or MODEL/VERSION as given on the command line."""

    model: str
    alias: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        if self.alias:
            return f"{self.model}@{self.alias}"
        return f"{self.model}/{self.version}" if self.version else self.model


_SPEC_FIX = "write MODEL, MODEL@ALIAS or MODEL/VERSION, e.g. housing@production or housing/3"


def parse_version_spec(spec: str) -> VersionSpec:
    """The model and the alias or version a spec names; ConfigError naming the accepted forms."""
    text = spec.strip()
    model, at, alias = text.partition("@")
    if at:
        if "/" in model or not alias:
            raise ConfigError(f"malformed model spec '{spec}': {_SPEC_FIX}")
        return VersionSpec(_model(model, spec), alias=validate_alias(alias, f"'{spec}'"))
    model, slash, version = text.partition("/")
    if slash:
        if not version.isascii() or not version.isdigit() or int(version) < 1:
            raise ConfigError(f"malformed model spec '{spec}': the version is a number from 1; {_SPEC_FIX}")
        return VersionSpec(_model(model, spec), version=str(int(version)))
    return VersionSpec(_model(model, spec))


def _model(name: str, spec: str) -> str:
    if not name:
        raise ConfigError(f"malformed model spec '{spec}': no model name; {_SPEC_FIX}")
    return validate_model_name(name)


@dataclass(frozen=True)
class PullRequest:
    """The pull or merge request that brought a commit into its branch, and how that was learnt."""

    number: int
    kind: str  # "pull request" (GitHub) or "merge request" (GitLab)
    source: str  # "merge commit message", "squash commit message", "GitHub API"
    commit: str  # the commit whose message (or API answer) named it
    title: str | None = None
    url: str | None = None

    @property
    def label(self) -> str:
        return f"!{self.number}" if self.kind == "merge request" else f"#{self.number}"


_GITHUB_MERGE = re.compile(r"^Merge pull request #(\d+) from \S+")
_SQUASH = re.compile(r"\(#(\d+)\)\s*$")
_GITLAB_MERGE = re.compile(r"^See merge request (?:[\w.-]+/)*[\w.-]+!(\d+)\s*$", re.MULTILINE)


def pull_request_in_message(message: str, commit: str) -> PullRequest | None:
    """The request a merge or squash commit's message names: GitHub's "Merge pull request #N from
    ...", a squash's "Title (#N)" subject, GitLab's "See merge request group/project!N" trailer."""
    lines = message.strip().splitlines()
    subject = lines[0].strip() if lines else ""
    if match := _GITHUB_MERGE.match(subject):
        title = next((line.strip() for line in lines[1:] if line.strip()), None)
        return PullRequest(int(match.group(1)), "pull request", "merge commit message", commit, title)
    if match := _GITLAB_MERGE.search(message):
        title = subject.removeprefix("Merge branch ").strip() or None
        return PullRequest(int(match.group(1)), "merge request", "merge commit message", commit, title)
    if match := _SQUASH.search(subject):
        title = subject[: match.start()].strip() or None
        return PullRequest(int(match.group(1)), "pull request", "squash commit message", commit, title)
    return None


@dataclass(frozen=True)
class DataObject:
    """A DVC-tracked out recorded at the build's commit: its hash, which stage made it (or the .dvc
    file that tracks it), which stages read it, and whether the remote holds it."""

    path: str
    md5: str
    produced_by: str
    used_by: tuple[str, ...]
    recorded_in: str  # "<lock or .dvc file>@<commit>", or the version tag it was read from
    held: str = NOT_CHECKED  # HELD (a sampled directory: "held (...)"), NOT_HELD, NOT_CHECKED or "unknown (...)"


@dataclass(frozen=True)
class AliasMoveRecord:
    """One move of an alias: what moved it, when, and to which build. A move made outside
    mlops-actions (an alias's holder differs from its last recorded move) is not recorded: it has
    no time and no actor."""

    alias: str
    version: str  # "" when the alias was deleted
    previous: str | None
    at: str | None
    by: str | None
    reason: str | None
    rolled_back: bool
    commit: str | None  # the commit the version was built from (its tag), else the move's own record
    pull_request: PullRequest | None = None
    ci_run_url: str | None = None  # the CI run that built the version (its `mlops.ci_run_url`)
    recorded: bool = True


@dataclass(frozen=True)
class Lineage:
    model: str
    version: str
    asked: str  # the spec as given: housing@production
    aliases: tuple[str, ...]  # the aliases on this version now
    run_id: str | None
    experiment_id: str | None
    source: str | None
    commit: str | None
    branch: str | None
    lock_commit: str | None
    ci_run_url: str | None
    pull_request: PullRequest | None
    pull_request_note: str  # why it is unknown, or where it came from
    data: tuple[DataObject, ...]
    data_note: str  # where the hashes were read, what could not be
    remote: str | None  # the remote asked, described without secrets
    moves: tuple[AliasMoveRecord, ...]
