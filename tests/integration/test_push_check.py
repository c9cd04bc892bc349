"""The push check's cost follows the change, not the remote, and it still catches one lost file.

Real dvc, git and a moto S3 server; requests counted by a proxy in front of moto. The 20,000-file
project is built once for the module (with --dist loadfile, the module runs on one worker).
"""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from tests.support import push_scale
from tests.support.project import sh
from tests.support.proxy import FlakyProxy
from tests.support.run import ci_helpers

pytestmark = pytest.mark.integration

MD5_ROOT = "dvc/files/md5/"


def _listed_prefixes(exchanges) -> list[str]:
    """The key prefix of every ListObjects request, relative to the remote's object folder."""
    found = []
    for exchange in exchanges:
        if exchange.method == "GET" and "list-type=2" in exchange.path:
            prefix = (
                unquote(exchange.path.split("prefix=", 1)[1].split("&", 1)[0]) if "prefix=" in exchange.path else ""
            )
            found.append(prefix.removeprefix(MD5_ROOT) if prefix.startswith(MD5_ROOT) else f"<{prefix}>")
    return found


@pytest.fixture(scope="module")
def big(moto_endpoint, tmp_path_factory):
    """main: data/train of 20,000 files; branch `pr`: 10 of them changed; all on the remote."""
    return push_scale.build_scale_project(
        tmp_path_factory.mktemp("push-scale"), moto_endpoint, "push-scale", 20_000, 10
    )


@pytest.fixture(scope="module")
def mid(moto_endpoint, tmp_path_factory):
    """2,000 files in a bucket of their own: enough objects that listing their prefixes is cheaper
    than asking for each, few enough that moto (which scans its bucket on every listing) is quick."""
    return push_scale.build_scale_project(tmp_path_factory.mktemp("push-mid"), moto_endpoint, "push-mid", 2_000, 10)


@pytest.fixture(scope="module")
def small(moto_endpoint, tmp_path_factory):
    """The same shape at 40 files (3 changed on `pr`), for the checks that delete objects."""
    return push_scale.build_scale_project(tmp_path_factory.mktemp("push-small"), moto_endpoint, "push-small", 40, 3)


def test_a_pr_touching_10_files_of_20000_asks_about_those_only_and_lists_nothing(big, tmp_path):
    with FlakyProxy(big.endpoint) as proxy:
        checkout = big.clone(tmp_path / "ci", "pr", proxy.url)

        result = ci_helpers("check-remote", "--baseline-ref", "main", cwd=checkout)

    assert result.code == 0, result.output
    assert "data/train: changed since `main`, 10 of 20,000 files asked" in result.output
    heads = [e for e in proxy.exchanges if e.method == "HEAD"]
    assert _listed_prefixes(proxy.exchanges) == []  # no listing at all, of the remote or of a prefix
    # the 10 changed files, plus opening the two manifests (new and main's), read with a GET each
    assert 10 <= len(heads) <= 14, [e.path for e in heads]
    assert len(proxy.exchanges) <= 20, [f"{e.method} {e.path}" for e in proxy.exchanges]


def test_without_a_base_every_file_is_asked_through_its_prefix_never_the_whole_remote(mid, tmp_path):
    with FlakyProxy(mid.endpoint) as proxy:
        checkout = mid.clone(tmp_path / "ci", "pr", proxy.url)

        result = ci_helpers("check-remote", cwd=checkout)

    assert result.code == 0, result.output
    assert "data/train: every file asked (no base); 2,000 objects asked (256 prefix listings)" in result.output
    listed = _listed_prefixes(proxy.exchanges)
    assert listed, "2,000 objects are cheaper listed than asked one by one"
    assert all(len(prefix) == 2 for prefix in listed), sorted(set(listed))  # never the root, never wider
    assert len(listed) == len(set(listed)) == 256


def _on_a_branch_that_leaves_the_data(checkout, config_url: str | None = None):
    """A PR branch off main that changes no data (and, given `config_url`, moves the committed
    remote URL: what the remote is at the base and now then differ)."""
    sh(["git", "checkout", "-q", "-b", "same"], checkout)
    if config_url:
        sh(["dvc", "remote", "modify", "storage", "url", config_url], checkout)
        sh(["git", "commit", "-qam", "move the remote"], checkout)
    else:
        sh(["git", "commit", "-q", "--allow-empty", "-m", "touch no data"], checkout)
    return checkout


def test_an_unchanged_directory_is_trusted_without_a_request(big, tmp_path):
    with FlakyProxy(big.endpoint) as proxy:
        checkout = _on_a_branch_that_leaves_the_data(big.clone(tmp_path / "ci", "main", proxy.url))

        result = ci_helpers("check-remote", "--baseline-ref", "main", cwd=checkout)

    assert result.code == 0, result.output
    assert "data/train: unchanged since `main`, verified there" in result.output
    assert proxy.exchanges == []


def _delete_one(project: push_scale.ScaleProject, branch: str, only_in_branch: bool) -> None:
    """Delete from the remote one file object of `branch`'s data/train: one the branch added when
    `only_in_branch`, else one main's manifest lists too."""
    sh(["git", "checkout", "-q", branch], project.dev)
    new = set(push_scale.manifest_oids(project.dev, push_scale.dir_md5(project.dev)))
    sh(["git", "checkout", "-q", "main"], project.dev)
    old = set(push_scale.manifest_oids(project.dev, push_scale.dir_md5(project.dev)))
    victim = sorted(new - old if only_in_branch else new & old)[0]
    push_scale.delete_object(project.bucket, victim)


@pytest.fixture
def small_with_a_changed_file_lost(small):
    _delete_one(small, "pr", only_in_branch=True)
    yield small
    push_scale.upload_cache(small.dev, small.bucket)


@pytest.fixture
def small_with_a_main_file_lost(small):
    _delete_one(small, "main", only_in_branch=False)
    yield small
    push_scale.upload_cache(small.dev, small.bucket)


def test_a_file_lost_from_a_changed_directory_is_caught_against_the_base(small_with_a_changed_file_lost, tmp_path):
    checkout = small_with_a_changed_file_lost.clone(tmp_path / "ci", "pr")

    result = ci_helpers("check-remote", "--baseline-ref", "main", cwd=checkout)

    assert result.code == 1, result.output
    assert "data/train is not on remote 'storage'" in result.output
    assert "changed since `main`, 3 of 40 files asked" in result.output
    assert "dvc push" in result.output


def test_a_file_lost_from_a_directory_is_caught_without_a_base(small_with_a_changed_file_lost, tmp_path):
    checkout = small_with_a_changed_file_lost.clone(tmp_path / "ci", "pr")

    result = ci_helpers("check-remote", cwd=checkout)

    assert result.code == 1, result.output
    assert "data/train is not on remote 'storage'" in result.output
    assert "data/train: every file asked (no base)" in result.output


def test_deep_catches_a_file_lost_after_main_verified_it_which_the_base_trusts(small_with_a_main_file_lost, tmp_path):
    checkout = _on_a_branch_that_leaves_the_data(small_with_a_main_file_lost.clone(tmp_path / "ci", "main"))

    trusting = ci_helpers("check-remote", "--baseline-ref", "main", cwd=checkout)
    deep = ci_helpers("check-remote", "--baseline-ref", "main", "--deep", cwd=checkout)
    deep_from_env = ci_helpers("check-remote", cwd=checkout, env={"CI_HELPERS_DEEP_CHECK": "true"})

    assert trusting.code == 0, trusting.output
    assert "data/train: unchanged since `main`, verified there" in trusting.output
    assert deep.code == 1, deep.output
    assert "data/train is not on remote 'storage'" in deep.output
    assert "every file asked (deep)" in deep.output
    assert deep_from_env.code == 1, deep_from_env.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--deep", "--remote", "nope"), "DVC remote 'nope' is not configured"),
        (("--deep", "--baseline-ref", "no-such-branch"), "baseline ref 'no-such-branch' is not a branch"),
    ],
    ids=["unknown-remote", "unknown-baseline"],
)
def test_bad_input_with_deep_is_exit_2_in_one_line(small, tmp_path, args, fragment):
    checkout = small.clone(tmp_path / "ci", "pr")

    result = ci_helpers("check-remote", *args, cwd=checkout)

    assert result.code == 2, result.output
    assert fragment in result.output
    assert "Traceback" not in result.output


def test_a_pr_that_moves_the_remote_trusts_nothing_the_base_verified(small_with_a_main_file_lost, tmp_path):
    """main verified its data on the remote it named; a PR that names another one is checked there
    in full (here the same bucket under another committed URL, so the lost file shows)."""
    checkout = small_with_a_main_file_lost.clone(tmp_path / "ci", "main")
    _on_a_branch_that_leaves_the_data(checkout, config_url="s3://another-bucket/dvc")

    result = ci_helpers("check-remote", "--baseline-ref", "main", cwd=checkout)

    assert result.code == 1, result.output
    assert "`main` used another URL for remote 'storage': nothing trusted" in result.output
    assert "data/train is not on remote 'storage'" in result.output


def test_the_commit_being_checked_is_no_base_for_itself(small_with_a_main_file_lost, tmp_path):
    checkout = small_with_a_main_file_lost.clone(tmp_path / "ci", "main")

    result = ci_helpers("check-remote", "--baseline-ref", "main", cwd=checkout)

    assert result.code == 1, result.output
    assert "unchanged since" not in result.output
    assert "data/train is not on remote 'storage'" in result.output
