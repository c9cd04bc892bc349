"""The GitLab CI/CD components under gitlab/templates/ mirror the composite actions.

Each template is a `spec: inputs:` header and a jobs document. Inputs reach the job's script only
through `variables:` (the GitLab analogue of the actions' "inputs only through env:" rule), every
CI_HELPERS_* variable is one that the ci-helpers command really reads (as its --help says), the
mapping input -> variable is the action's, and the script calls only existing commands.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ci_helpers.cli import cli

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "gitlab" / "templates"
ACTIONS = ROOT / "actions"
NAMES = ("pr-validate", "master-build", "register-model")
# The ci-helpers commands each component may run.
COMMANDS = {
    "pr-validate": ("pr-validate",),
    "master-build": ("master-build",),
    "register-model": ("register-model", "promote", "rollback"),
}
# Inputs of the component itself (job layout, install), not options of ci-helpers.
JOB_INPUTS = {"job-name", "job-stage", "image", "git-depth", "ci-helpers-package", "pip-args", "when", "command"}
INTERPOLATION = re.compile(r"\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]")
ACTION_EXPRESSION = re.compile(r"^\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}$")
SCRIPT_KEYS = ("before_script", "script", "after_script")


def load(name: str) -> tuple[dict, str, dict]:
    docs = list(yaml.safe_load_all((TEMPLATES / f"{name}.yml").read_text()))
    assert len(docs) == 2, f"{name}: a spec header and a jobs document, separated by ---"
    header, jobs = docs
    assert list(jobs) == ["$[[ inputs.job-name ]]"], f"{name}: one job, named by the job-name input"
    (job_name, job) = next(iter(jobs.items()))
    return header["spec"]["inputs"], job_name, job


def script_text(job: dict) -> str:
    return "\n".join(line for key in SCRIPT_KEYS for line in job.get(key, []))


def env_vars_of(command: str | None) -> set[str]:
    """The env vars `ci-helpers [command] --help` names, read from the help text itself."""
    args = [command, "--help"] if command else ["--help"]
    result = CliRunner().invoke(cli, args, terminal_width=500, max_content_width=500)
    assert result.exit_code == 0, result.output
    text = re.sub(r"\s+", " ", result.output)
    found: set[str] = set()
    for group in re.findall(r"env var: ([A-Z0-9_]+(?:, [A-Z0-9_]+)*)", text):
        found.update(part.strip() for part in group.split(","))
    return found


def action_mapping(name: str) -> dict[str, str]:
    """CI_HELPERS_* -> input name, as actions/<name>/action.yml passes them in its ci-helpers step."""
    action = yaml.safe_load((ACTIONS / name / "action.yml").read_text())
    mapping: dict[str, str] = {}
    for step in action["runs"]["steps"]:
        for var, value in (step.get("env") or {}).items():
            match = ACTION_EXPRESSION.match(str(value))
            if var.startswith("CI_HELPERS_") and match:
                mapping[var] = match.group(1)
    assert mapping, f"{name}: no CI_HELPERS_ env in the action"
    return mapping


def template_mapping(job: dict) -> dict[str, str]:
    mapping = {}
    for var, value in job["variables"].items():
        match = INTERPOLATION.fullmatch(str(value).strip())
        if var.startswith("CI_HELPERS_") and match:
            mapping[var] = match.group(1)
    return mapping


def test_every_component_is_there() -> None:
    assert sorted(p.stem for p in TEMPLATES.glob("*.yml")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_header_declares_optional_described_inputs(name: str) -> None:
    inputs, _, _ = load(name)
    for input_name, spec in inputs.items():
        assert re.fullmatch(r"[a-z][a-z0-9-]*", input_name), input_name
        assert spec.get("description"), f"{name}: input {input_name} has no description"
        assert "default" in spec, f"{name}: input {input_name} must be optional (have a default)"
        assert isinstance(spec["default"], str), f"{name}: {input_name}'s default must be a string"
        if "options" in spec:
            assert spec["default"] in spec["options"], f"{name}: {input_name}'s default is not one of its options"


@pytest.mark.parametrize("name", NAMES)
def test_no_input_is_interpolated_into_a_script(name: str) -> None:
    _, _, job = load(name)
    for key in SCRIPT_KEYS:
        for line in job.get(key, []):
            assert "$[[" not in line, f"{name}: {key} interpolates an input directly; pass it through variables:"
    for var, value in job["variables"].items():
        text = str(value)
        if "$[[" in text:
            assert INTERPOLATION.fullmatch(text.strip()), f"{name}: variable {var} must be exactly one input"


@pytest.mark.parametrize("name", NAMES)
def test_every_input_is_defined_and_used(name: str) -> None:
    inputs, job_name, job = load(name)
    used = set(INTERPOLATION.findall(yaml.safe_dump({job_name: job})))
    assert used <= set(inputs), f"{name}: interpolates undeclared inputs {sorted(used - set(inputs))}"
    assert set(inputs) <= used, f"{name}: declares unused inputs {sorted(set(inputs) - used)}"


@pytest.mark.parametrize("name", NAMES)
def test_inputs_map_to_env_vars_the_command_reads(name: str) -> None:
    inputs, _, job = load(name)
    accepted = set().union(*(env_vars_of(command) for command in COMMANDS[name]))
    mapping = template_mapping(job)
    for var, input_name in mapping.items():
        assert var in accepted, f"{name}: {var} (input {input_name}) is no env var of {COMMANDS[name]}"
    option_inputs = set(inputs) - JOB_INPUTS
    assert option_inputs == set(mapping.values()), "every option input has its CI_HELPERS_* variable"
    for var in job["variables"]:
        assert var.startswith(("CI_HELPERS_", "MLOPS_", "GIT_")), f"{name}: unexpected variable {var}"


@pytest.mark.parametrize("name", NAMES)
def test_mapping_is_the_actions(name: str) -> None:
    _, _, job = load(name)
    ours, actions = template_mapping(job), action_mapping(name)
    assert ours.items() <= actions.items(), "same variable, same input name as the action"
    # every CI_HELPERS_* input of the action has its GitLab counterpart (the GitHub token is not one:
    # the MR note's token is a CI/CD variable, read by ci-helpers itself)
    assert set(actions.values()) == set(ours.values())


@pytest.mark.parametrize("name", NAMES)
def test_script_calls_only_existing_commands(name: str) -> None:
    _, _, job = load(name)
    called = set(re.findall(r"/bin/ci-helpers\"?\s+([a-z][a-z-]*)", script_text(job)))
    assert called == set(COMMANDS[name])
    assert called <= set(cli.commands)


@pytest.mark.parametrize("name", NAMES)
def test_script_is_valid_bash_and_passes_the_exit_code_through(name: str) -> None:
    _, _, job = load(name)
    text = script_text(job)
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)
    assert 'exit "$mlops_rc"' in job["script"][-1].splitlines()[-1]
    assert "|| mlops_rc=$?" in text


def test_the_shared_parts_are_the_same_everywhere() -> None:
    jobs = [load(name)[2] for name in NAMES]
    installs = {job["script"][0] for job in jobs}
    assert len(installs) == 1, "the install step differs between templates"
    assert "pip install" in next(iter(installs))
    assert len({job["artifacts"]["paths"][0] for job in jobs}) == 1
    outputs = {job["script"][-1].split("<<'PYEOF'", 1)[1] for job in jobs}
    assert len(outputs) == 1, "the dotenv conversion differs between templates"
    for job in jobs:
        assert job["artifacts"]["when"] == "always"
        assert job["artifacts"]["paths"] == ["$[[ inputs.report-json ]]"]
        assert job["artifacts"]["reports"]["dotenv"] == "ci-helpers.env"


def test_pr_validate_runs_on_merge_requests_against_the_target_branch() -> None:
    _, _, job = load("pr-validate")
    assert job["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert job["variables"]["GIT_DEPTH"] == "$[[ inputs.git-depth ]]"
    text = script_text(job)
    assert "$CI_MERGE_REQUEST_TARGET_BRANCH_NAME" in text
    assert "git fetch" in text


def test_pr_validate_writes_the_mr_note_only_when_asked_and_never_handles_the_token() -> None:
    inputs, _, job = load("pr-validate")
    assert job["variables"]["CI_HELPERS_COMMENT"] == "$[[ inputs.comment ]]"
    assert inputs["comment"]["default"] == ""
    text = script_text(job)
    for name in ("CI_HELPERS_GITLAB_TOKEN", "GITLAB_TOKEN", "CI_JOB_TOKEN"):
        assert name not in text, f"the script handles {name}; ci-helpers reads it from the environment"
    assert "set -x" not in text


def test_master_build_pushes_with_the_token_without_printing_it() -> None:
    _, _, job = load("master-build")
    assert "$CI_DEFAULT_BRANCH" in job["rules"][0]["if"]
    text = script_text(job)
    assert "remote.origin.pushurl" in text
    token_lines = [line for line in text.splitlines() if "CI_HELPERS_GIT_TOKEN}" in line]
    assert token_lines, "the push URL is built from CI_HELPERS_GIT_TOKEN"
    for line in token_lines:
        assert not re.match(r"\s*(echo|printf)", line), f"the token may be printed: {line}"
    assert "set -x" not in text
    assert "git remote set-url" not in text, "the token must not be written to .git/config"


def test_readme_shows_each_component_and_the_token() -> None:
    readme = (ROOT / "gitlab" / "README.md").read_text()
    for name in NAMES:
        assert re.search(rf"- component: \S+/{name}@", readme), f"README has no include of {name}"
    assert "CI_HELPERS_GIT_TOKEN" in readme
    assert "write_repository" in readme
