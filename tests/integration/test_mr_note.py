"""`pr-validate --comment` in a GitLab CI job: one merge request note, created once and then
updated in place.

Real dvc, git and moto S3 as in the other integration tests. GitLab's web API is the one fake:
tests/support/fake_gitlab.py serves it on 127.0.0.1 (notes in memory, GitLab's pagination headers,
a PRIVATE-TOKEN check, a project id, a mode answering writes as GitLab answers a token without the
`api` scope), and ci-helpers finds it as a GitLab job does: $GITLAB_CI, $CI_API_V4_URL,
$CI_PROJECT_ID and $CI_MERGE_REQUEST_IID, the token in $CI_HELPERS_GITLAB_TOKEN.

The cases a user sees in the job's exit code and report run `ci-helpers pr-validate`; those that
only concern the note (paging, refusals, retries, the environment) call the function pr-validate
calls, in-process, against the same fake: the pipeline around it would add a minute and no check.
"""

from __future__ import annotations

import pytest

from tests.support.fake_gitlab import PROJECT_ID, FakeGitLab
from tests.support.run import ci_helpers

pytestmark = pytest.mark.integration

MR = 7
TOKEN = "glpat-FAKEtoken1234567890ab"
MARKER = "<!-- mlops-actions:pr-validate -->"
FAILING = ("--threshold", "metrics.r2_score>=0.99999")
NOTES_PATH = f"/api/v4/projects/{PROJECT_ID}/merge_requests/{MR}/notes"


@pytest.fixture
def fake_gitlab():
    fake = FakeGitLab(TOKEN).start()
    yield fake
    fake.stop()


def _env(fake: FakeGitLab, **extra: str) -> dict[str, str]:
    """What a GitLab runner gives a merge request pipeline's job (and the project's CI/CD variable)."""
    return {
        "GITLAB_CI": "true",
        "CI_API_V4_URL": fake.api_url,
        "CI_PROJECT_ID": str(PROJECT_ID),
        "CI_MERGE_REQUEST_IID": str(MR),
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "pr-better",
        "CI_JOB_URL": f"{fake.url}/acme/housing/-/jobs/41",
        "CI_HELPERS_BASELINE_REF": "main",  # the component sets it from the MR's target branch
        "CI_HELPERS_GITLAB_TOKEN": TOKEN,
        "CI_HELPERS_RETRY_ATTEMPTS": "2",
        **extra,
    }


def _ours(fake: FakeGitLab) -> list[dict]:
    return [n for n in fake.notes_on(MR) if n["body"].startswith(MARKER)]


def _assert_only_the_notes_api_with_the_token(fake: FakeGitLab) -> None:
    assert fake.requests
    for request in fake.requests:
        assert request.path.split("?")[0].startswith(NOTES_PATH), request.path
        assert request.headers["PRIVATE-TOKEN"] == TOKEN
        assert "Authorization" not in request.headers


def test_two_runs_leave_one_note_updated_with_the_second_verdict(project, fake_gitlab):
    checkout = project.checkout("pr-better")
    other = fake_gitlab.add_note(MR, "LGTM, but see the plots", author="reviewer")
    fake_gitlab.add_note(MR, "added 1 commit", author="dev", system=True)

    first = ci_helpers("pr-validate", "--no-track", "--comment", cwd=checkout, env=_env(fake_gitlab))

    assert first.code == 0, first.output
    (note,) = _ours(fake_gitlab)
    assert "## Model validation for PR #7: ✅ passed" in note["body"]  # the IID from $CI_MERGE_REQUEST_IID
    assert "`metrics.r2_score`" in note["body"]
    assert f"MR note on MR !{MR}: created (note {note['id']})" in first.stderr

    second = ci_helpers(
        "pr-validate",
        "--no-track",
        *FAILING,
        cwd=checkout,
        env=_env(fake_gitlab, CI_HELPERS_COMMENT="true"),  # the component's way
    )

    assert second.code == 1, second.output  # the verdict's exit code, unchanged by the note
    (updated,) = _ours(fake_gitlab)
    assert updated["id"] == note["id"]
    assert "❌ failed: metrics gate" in updated["body"]
    assert "✅ passed" not in updated["body"]
    assert f"MR note on MR !{MR}: updated (note {note['id']})" in second.stderr
    assert len(fake_gitlab.notes_on(MR)) == 3
    assert fake_gitlab.notes[other]["body"] == "LGTM, but see the plots"
    assert [r.method for r in fake_gitlab.requests] == ["GET", "POST", "GET", "PUT"]
    _assert_only_the_notes_api_with_the_token(fake_gitlab)


def test_a_token_without_the_api_scope_falls_back_to_the_job_log(project, fake_gitlab):
    checkout = project.checkout("pr-better")
    fake_gitlab.read_only = True

    result = ci_helpers("pr-validate", "--no-track", "--comment", *FAILING, cwd=checkout, env=_env(fake_gitlab))

    assert result.code == 1, result.output  # the verdict's code: the note fails nothing
    notices = [line for line in result.stderr.splitlines() if line.startswith("notice:")]
    assert len(notices) == 1, result.output
    assert "the MR note could not be written" in notices[0]
    assert "answered 403: The request requires higher privileges" in notices[0]
    assert "`api` scope" in notices[0]
    assert "the job log holds the report" in notices[0]
    assert "## Model validation for PR #7: ❌ failed: metrics gate" in result.stdout  # the report, in the log
    assert fake_gitlab.notes_on(MR) == []
    assert [r.method for r in fake_gitlab.requests] == ["GET", "POST"]
    assert "Traceback" not in result.output
    assert TOKEN not in result.output


def test_the_note_holds_no_secret_and_not_the_token(project, fake_gitlab):
    from tests.support.servers import refused_port

    password = "PLANTED-pass-7788"
    checkout = project.checkout("pr-better")
    uri = f"http://ci-user:{password}@127.0.0.1:{refused_port()}"  # unreachable: its error lands in the report
    env = {**_env(fake_gitlab), "CI_HELPERS_GITLAB_TOKEN": "", "GITLAB_TOKEN": TOKEN}  # the other documented name

    result = ci_helpers("pr-validate", "--tracking-uri", uri, "--comment", cwd=checkout, env=env)

    assert result.code == 3, result.output  # MLflow unreachable: exit 3 stands, the note is written first
    (note,) = _ours(fake_gitlab)
    assert "Not logged to MLflow" in note["body"]
    assert "http://***@127.0.0.1" in note["body"]
    for request in fake_gitlab.requests:
        assert password not in request.body
        assert TOKEN not in request.body
    assert password not in result.output
    assert TOKEN not in result.output


def test_the_note_body_never_carries_the_gitlab_token(monkeypatch):
    from ci_helpers.report.comment import GitLabThread, comment_body

    monkeypatch.setenv("CI_HELPERS_GITLAB_TOKEN", TOKEN)
    body = comment_body(f"| `{TOKEN}` |\n" * 3, ".", None, GitLabThread.limit, GitLabThread.host)
    assert TOKEN not in body
    assert body.startswith(MARKER + "\n")
    cut = comment_body(
        "| `metrics.r2_score` | 0.81 |\n" * 40_000,
        ".",
        "https://gitlab.example/acme/housing/-/jobs/41",
        GitLabThread.limit,
        "GitLab",
    )
    assert len(cut) <= 1_000_000
    assert "Truncated to GitLab's comment size limit" in cut
    # the job log's summary was cut too (over 1 MiB): the note sends readers to the JSON report
    assert "the JSON report of [this run](https://gitlab.example/acme/housing/-/jobs/41)" in cut
    assert "job log" not in cut
    small = comment_body("| `m` | 0.81 |\n" * 30_000, ".", "https://gitlab.example/j/41", 100_000, "GitLab")
    assert "the job log of [this run](https://gitlab.example/j/41)" in small


# -- the same path in-process, for the cases that need no pipeline run -----------------------


REPORT = "## Model validation for PR #7: ✅ passed\n\n| metric | value |\n"


def _publish(monkeypatch, fake: FakeGitLab, **env: str) -> str | None:
    """publish_pr_comment as pr-validate calls it, the MR's IID and job URL read by provenance."""
    from ci_helpers.provenance import ci_run_url, pr_number_from_env
    from ci_helpers.report.comment import publish_pr_comment

    for name, value in {**_env(fake), **env}.items():
        monkeypatch.setenv(name, value)
    return publish_pr_comment(REPORT, pr_number_from_env(), ".", ci_run_url())


def test_a_marker_note_past_the_first_page_is_updated_not_duplicated(monkeypatch, fake_gitlab, capsys):
    for i in range(150):
        fake_gitlab.add_note(MR, f"note {i}")
    fake_gitlab.add_note(MR, f"> {MARKER}\n> quoted by a reviewer: not ours")
    ours = fake_gitlab.add_note(MR, f"{MARKER}\n## an older report", author="project_1217_bot")
    for i in range(20):
        fake_gitlab.add_note(MR, f"later note {i}")

    assert _publish(monkeypatch, fake_gitlab) == f"updated (note {ours})"

    assert len(fake_gitlab.notes_on(MR)) == 172  # nothing created
    (note,) = _ours(fake_gitlab)
    assert note["id"] == ours
    assert note["body"] == f"{MARKER}\n{REPORT}"
    assert [r.method for r in fake_gitlab.requests] == ["GET", "GET", "PUT"]
    first, following = fake_gitlab.requests[0].path, fake_gitlab.requests[1].path
    assert "per_page=100" in first
    assert "sort=asc" in first  # GitLab lists newest first unless asked
    assert "page=1" in first
    assert "page=2" in following  # as X-Next-Page said
    assert fake_gitlab.requests[2].path == f"{NOTES_PATH}/{ours}"
    assert f"MR note on MR !{MR}: updated (note {ours})" in capsys.readouterr().err
    _assert_only_the_notes_api_with_the_token(fake_gitlab)


def test_a_rejected_token_falls_back_to_the_job_log(monkeypatch, fake_gitlab, capsys):
    fake_gitlab.token = "glpat-the-one-gitlab-knows"  # ours was revoked

    assert _publish(monkeypatch, fake_gitlab) is None

    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("notice:")]
    assert "the MR note could not be written: GET /api/v4/projects/1217/merge_requests/7/notes answered 401" in line
    assert "the job log holds the report" in line
    assert [r.method for r in fake_gitlab.requests] == ["GET"]  # refused: not retried
    assert TOKEN not in err


def test_without_a_token_nothing_is_sent_and_the_notice_names_the_variable(monkeypatch, fake_gitlab, capsys):
    monkeypatch.setenv("CI_JOB_TOKEN", "job-token-cannot-write-notes")

    assert _publish(monkeypatch, fake_gitlab, CI_HELPERS_GITLAB_TOKEN="") is None

    assert fake_gitlab.requests == []
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("notice:")]
    assert "no CI_HELPERS_GITLAB_TOKEN or GITLAB_TOKEN" in line
    assert "CI_JOB_TOKEN cannot write notes" in line


def test_a_failing_api_is_retried_then_only_warned_about(monkeypatch, fake_gitlab, capsys):
    fake_gitlab.fail_next = 10  # more than the retries

    assert _publish(monkeypatch, fake_gitlab) is None

    assert len(fake_gitlab.requests) == 2  # CI_HELPERS_RETRY_ATTEMPTS=2
    err = capsys.readouterr().err
    assert "warning: MR note not written after 2 attempt(s)" in err
    assert "answered 502" in err
    assert fake_gitlab.notes_on(MR) == []


def test_outside_a_merge_request_the_note_only_warns(monkeypatch, fake_gitlab, capsys):
    assert _publish(monkeypatch, fake_gitlab, CI_MERGE_REQUEST_IID="") is None  # a branch pipeline

    assert "not a merge request" in capsys.readouterr().err
    assert fake_gitlab.requests == []


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("CI_API_V4_URL", "ftp://gitlab.example/api/v4", "is not an http(s) URL"),
        ("CI_API_V4_URL", "https://user:pw@gitlab.example/api/v4", "must not carry credentials"),
        ("CI_PROJECT_ID", "acme/housing", "is not a numeric project id"),
    ],
)
def test_a_malformed_gitlab_environment_is_warned_about_and_nothing_is_sent(
    monkeypatch, fake_gitlab, capsys, name, value, said
):
    assert _publish(monkeypatch, fake_gitlab, **{name: value}) is None

    err = capsys.readouterr().err
    assert f"warning: MR note not written: {name}" in err
    assert said in err
    assert "pw@" not in err
    assert fake_gitlab.requests == []
