"""`pr-validate --comment`: one sticky PR comment, created once and then updated in place.

Real dvc, git and moto S3 as in the other integration tests. GitHub's web API is the one fake:
tests/support/fake_github.py serves it on 127.0.0.1 (comments in memory, pagination, a token
check, a read-only mode answering 403 to writes as a fork PR's token gets), and ci-helpers is
pointed at it through $GITHUB_API_URL, as on GitHub Enterprise.
"""

from __future__ import annotations

import pytest

from tests.support.fake_github import FakeGitHub
from tests.support.run import ci_helpers, github_env

pytestmark = pytest.mark.integration

REPO = "acme/housing"
PR = 7
TOKEN = "ghs_FAKEtoken1234567890abcdef"
MARKER = "<!-- mlops-actions:pr-validate -->"
FAILING = ("--threshold", "metrics.r2_score>=0.99999")


@pytest.fixture
def fake_github():
    fake = FakeGitHub(TOKEN).start()
    yield fake
    fake.stop()


def _env(tmp_path, fake: FakeGitHub, **extra: str) -> dict[str, str]:
    return github_env(
        tmp_path,
        GITHUB_REF=f"refs/pull/{PR}/merge",
        GITHUB_BASE_REF="main",
        GITHUB_HEAD_REF="pr-better",
        GITHUB_API_URL=fake.url,
        GITHUB_REPOSITORY=REPO,
        GITHUB_TOKEN=TOKEN,
        CI_HELPERS_RETRY_ATTEMPTS="2",
        **extra,
    )


def _ours(fake: FakeGitHub) -> list[dict]:
    return [c for c in fake.comments_on(REPO, PR) if c["body"].startswith(MARKER)]


def _assert_only_the_api_with_the_token(fake: FakeGitHub) -> None:
    assert fake.requests
    for request in fake.requests:
        assert request.path.startswith(f"/repos/{REPO}/issues/"), request.path
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_two_runs_leave_one_comment_updated_with_the_second_verdict(project, fake_github, tmp_path):
    checkout = project.checkout("pr-better")
    other = fake_github.add_comment(REPO, PR, "LGTM, but see the plots", user="reviewer")

    first = ci_helpers("pr-validate", "--no-track", "--comment", cwd=checkout, env=_env(tmp_path / "gh1", fake_github))

    assert first.code == 0, first.output
    (comment,) = _ours(fake_github)
    assert "## Model validation for PR #7: ✅ passed" in comment["body"]
    assert "`metrics.r2_score`" in comment["body"]
    assert "PR comment on PR #7: created" in first.stderr

    second = ci_helpers(
        "pr-validate",
        "--no-track",
        *FAILING,
        cwd=checkout,
        env=_env(tmp_path / "gh2", fake_github, CI_HELPERS_COMMENT="true"),  # the action's way
    )

    assert second.code == 1, second.output  # the verdict's exit code, unchanged by the comment
    (updated,) = _ours(fake_github)
    assert updated["id"] == comment["id"]
    assert "❌ failed: metrics gate" in updated["body"]
    assert "✅ passed" not in updated["body"]
    assert "PR comment on PR #7: updated" in second.stderr
    assert len(fake_github.comments_on(REPO, PR)) == 2
    assert fake_github.comments[other]["body"] == "LGTM, but see the plots"
    assert sum(r.method == "POST" for r in fake_github.requests) == 1
    _assert_only_the_api_with_the_token(fake_github)


def test_a_marker_comment_past_the_first_page_is_updated_not_duplicated(project, fake_github, tmp_path):
    checkout = project.checkout("pr-better")
    for i in range(150):
        fake_github.add_comment(REPO, PR, f"comment {i}")
    fake_github.add_comment(REPO, PR, f"> {MARKER}\n> quoted by a reviewer: not ours")
    ours = fake_github.add_comment(REPO, PR, f"{MARKER}\n## an older report", user="github-actions[bot]")
    for i in range(20):
        fake_github.add_comment(REPO, PR, f"later comment {i}")

    result = ci_helpers("pr-validate", "--no-track", "--comment", cwd=checkout, env=_env(tmp_path / "gh", fake_github))

    assert result.code == 0, result.output
    assert len(fake_github.comments_on(REPO, PR)) == 172  # nothing created
    (comment,) = _ours(fake_github)
    assert comment["id"] == ours
    assert "✅ passed" in comment["body"]
    assert [r.method for r in fake_github.requests] == ["GET", "GET", "PATCH"]
    assert "per_page=100" in fake_github.requests[0].path
    assert "page=2" in fake_github.requests[1].path  # followed the Link header
    _assert_only_the_api_with_the_token(fake_github)


def test_two_projects_of_a_monorepo_keep_one_comment_each(project, fake_github, tmp_path):
    checkout = project.checkout("pr-better")
    fake_github.add_comment(REPO, PR, "<!-- mlops-actions:pr-validate project=models/churn -->\nchurn's report")

    result = ci_helpers("pr-validate", "--no-track", "--comment", cwd=checkout, env=_env(tmp_path / "gh", fake_github))

    assert result.code == 0, result.output
    bodies = [c["body"] for c in fake_github.comments_on(REPO, PR)]
    assert bodies[0].endswith("churn's report")  # the other project's comment is left alone
    assert bodies[1].startswith(MARKER)


def test_a_read_only_token_falls_back_to_the_job_summary(project, fake_github, tmp_path):
    checkout = project.checkout("pr-better")
    fake_github.read_only = True

    result = ci_helpers(
        "pr-validate", "--no-track", "--comment", *FAILING, cwd=checkout, env=_env(tmp_path / "gh", fake_github)
    )

    assert result.code == 1, result.output  # the verdict's code: the comment fails nothing
    notices = [line for line in result.stdout.splitlines() if line.startswith("::notice")]
    assert len(notices) == 1, result.output
    assert "could not be written" in notices[0]
    assert "403" in notices[0]
    assert "pull-requests: write" in notices[0]
    summary = (tmp_path / "gh" / "summary").read_text()
    assert "## Model validation for PR #7: ❌ failed: metrics gate" in summary
    assert "The PR comment could not be written" in summary
    assert fake_github.comments_on(REPO, PR) == []
    assert "Traceback" not in result.output
    assert TOKEN not in result.output.replace(f"::add-mask::{TOKEN}", "")


def test_a_failing_api_is_retried_then_only_warned_about(project, fake_github, tmp_path):
    checkout = project.checkout("pr-better")
    fake_github.fail_next = 10  # more than the retries

    result = ci_helpers("pr-validate", "--no-track", "--comment", cwd=checkout, env=_env(tmp_path / "gh", fake_github))

    assert result.code == 0, result.output
    assert len(fake_github.requests) == 2  # CI_HELPERS_RETRY_ATTEMPTS=2
    warnings = [line for line in result.stdout.splitlines() if line.startswith("::warning")]
    assert any("PR comment not written after 2 attempt(s)" in line and "502" in line for line in warnings)
    assert fake_github.comments_on(REPO, PR) == []


def test_outside_a_pull_request_comment_only_warns(project, fake_github, tmp_path):
    checkout = project.checkout("pr-better")
    env = {**_env(tmp_path / "gh", fake_github), "GITHUB_REF": "refs/heads/feature"}

    result = ci_helpers("pr-validate", "--no-track", "--comment", cwd=checkout, env=env)

    assert result.code == 0, result.output
    assert "not a pull request" in result.stdout
    assert fake_github.requests == []


def test_the_comment_holds_no_secret_and_not_the_token(project, fake_github, tmp_path):
    from tests.support.servers import refused_port

    password = "PLANTED-pass-7788"
    checkout = project.checkout("pr-better")
    uri = f"http://ci-user:{password}@127.0.0.1:{refused_port()}"  # unreachable: its error lands in the report

    result = ci_helpers(
        "pr-validate", "--tracking-uri", uri, "--comment", cwd=checkout, env=_env(tmp_path / "gh", fake_github)
    )

    assert result.code == 3, result.output  # MLflow unreachable: exit 3 stands, the comment is written first
    (comment,) = _ours(fake_github)
    assert "Not logged to MLflow" in comment["body"]
    assert "http://***@127.0.0.1" in comment["body"]
    for request in fake_github.requests:
        assert password not in request.body
        assert TOKEN not in request.body
    assert password not in result.output
    assert TOKEN not in result.output.replace(f"::add-mask::{TOKEN}", "")


def test_a_long_report_is_cut_to_githubs_limit_with_a_note_and_markers_stay_closed(monkeypatch):
    from ci_helpers.report.comment import MAX_BODY, comment_body, marker

    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    body = comment_body(f"| row | {TOKEN} |\n" * 5000, ".", "https://github.example/acme/housing/actions/runs/1")
    assert len(body) <= MAX_BODY
    assert body.startswith(MARKER + "\n")
    assert "Truncated to GitHub's comment size limit" in body
    assert "[this run](https://github.example/acme/housing/actions/runs/1)" in body
    assert TOKEN not in body
    assert comment_body("short\n", ".") == f"{MARKER}\nshort\n"
    assert marker("a-->b") == "<!-- mlops-actions:pr-validate project=a-\u2010\u203ab -->"
