"""Who owns the branch's dvc.lock and the alias: the pure decisions of ci_helpers.supersession."""

from __future__ import annotations

import pytest

from ci_helpers.lock_commit import commit_message
from ci_helpers.supersession import BranchCommit, alias_diverged, alias_newer, built_from, newer_on_branch

# A linear history: a0 < a1 < c (built) < d1 < d2.
ORDER = ["a0" * 20, "a1" * 20, "cc" * 20, "d1" * 20, "d2" * 20]
A0, A1, C, D1, D2 = ORDER


def is_ancestor(old: str, new: str) -> bool:
    return ORDER.index(old) <= ORDER.index(new)


def lock_commit(sha: str, built: str) -> BranchCommit:
    return BranchCommit(sha, commit_message(built), ("dvc.lock",))


def decide(*commits: BranchCommit):
    inputs = ["params.yaml", "src", "data/raw.csv.dvc"]  # the project's own .dvc files are among its inputs
    return newer_on_branch(list(commits), C, "main", ["dvc.lock"], inputs, is_ancestor)


def test_the_lock_commit_message_names_its_build_in_a_trailer_and_keeps_the_subject():
    message = commit_message(D1)
    assert message.splitlines()[0] == f"Update dvc.lock from the CI build of {D1[:12]} [skip ci]"
    assert built_from(message) == D1


def test_the_legacy_subject_still_names_its_build():
    assert built_from(f"Update dvc.lock from the CI build of {D1[:12]} [skip ci]") == D1[:12]
    assert built_from("Update dvc.lock by hand") is None
    assert built_from(f"fix typo\n\nsee the CI build of {D1[:12]} [skip ci]") is None


def test_lock_commits_of_this_build_or_older_ones_are_replayed_over():
    assert decide(lock_commit("e1" * 20, C), lock_commit("e2" * 20, A1), lock_commit("e3" * 20, A0)) is None


def test_a_lock_commit_built_from_a_descendant_supersedes_and_names_that_commit():
    found = decide(BranchCommit("f1" * 20, "docs", ("README.md",)), lock_commit("e1" * 20, D1))
    assert found is not None
    assert found.by == D1
    assert found.line.startswith(f"superseded by {D1[:12]}: ")


def test_a_developer_commit_of_the_lock_supersedes():
    found = decide(BranchCommit(D2, "retrain", ("dvc.lock", "README.md")))
    assert found is not None
    assert found.by == D2
    assert "changed dvc.lock" in found.reason


@pytest.mark.parametrize("path", ["params.yaml", "src/train.py", "data/raw.csv.dvc"])
def test_a_newer_pipeline_input_supersedes(path):
    found = decide(BranchCommit(D1, "change", (path,)))
    assert found is not None
    assert found.by == D1
    assert path in found.reason


def test_unrelated_commits_do_not_supersede():
    assert decide(BranchCommit(D1, "docs", ("README.md", "docs/x.md"))) is None


def test_the_newest_owner_is_named():
    found = decide(lock_commit("e2" * 20, D2), BranchCommit(D2, "p", ("params.yaml",)), lock_commit("e1" * 20, D1))
    assert found is not None
    assert found.by == D2


def test_the_alias_supersedes_only_from_a_strict_descendant():
    assert alias_newer("staging", ("7", D1), C, is_ancestor).by == D1
    assert "'staging' is on v7" in alias_newer("staging", ("7", D1), C, is_ancestor).reason
    assert alias_newer("staging", ("7", C), C, is_ancestor) is None
    assert alias_newer("staging", ("7", A1), C, is_ancestor) is None
    assert alias_newer("staging", ("7", None), C, is_ancestor) is None
    assert alias_newer("staging", None, C, is_ancestor) is None


def test_another_project_of_a_monorepo_supersedes_nothing():
    """ml-b's CI lock commit built from a newer commit, and ml-b's own .dvc file, leave ml-a's build be."""
    other_lock = BranchCommit("e1" * 20, commit_message(D1), ("ml-b/dvc.lock",))
    other_data = BranchCommit("e2" * 20, "ml-b data", ("ml-b/data/raw.csv.dvc",))
    assert decide(other_lock, other_data) is None


def test_an_alias_on_another_branch_s_build_is_a_divergence_to_refuse():
    side = "5e" * 20  # neither before nor after C

    def ancestry(old: str, new: str) -> bool:
        return side not in (old, new) and is_ancestor(old, new)

    why = alias_diverged("staging", ("7", side), C, ancestry)
    assert why is not None
    assert why.startswith(f"the alias 'staging' is on v7, built from {side[:12]}, which is neither")
    assert alias_diverged("staging", ("6", A1), C, ancestry) is None  # older: this build moves it
    assert alias_diverged("staging", ("8", D1), C, ancestry) is None  # newer: superseded, not diverged
    assert alias_diverged("staging", None, C, ancestry) is None
