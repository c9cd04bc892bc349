"""The `uses: org/mlops-actions/...` lines the docs hand a user (the yaml blocks of README.md and
docs/*.md, and examples/workflows/*.yml) are paths a user can copy:

- (cheap, always) each names a folder of this repository holding action.yml, and the step's `with:`
  passes only inputs that action declares (and every input it requires);
- each is pinned to a release: a tag (`@v1`), or a commit SHA with the release named in a `# v1`
  comment (the examples' form, which zizmor's pedantic persona asks for);
- (act) each documented step, its `uses:` line verbatim, run by the real `act` with
  org/mlops-actions@<its ref> mapped to this checkout, starts OUR action: an extra input makes it
  refuse early with its own exit-2 message, so the run is quick and touches nothing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.actions.test_actions import act_command, act_environment, act_home  # noqa: F401  (act_home: fixture)

ROOT = Path(__file__).resolve().parents[2]
OWNER_REPO = "org/mlops-actions"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = sorted((ROOT / "examples" / "workflows").glob("*.yml"))
# A `uses:` line naming this repository, as a line of YAML (a step's first key or a later one).
USES_LINE = re.compile(rf"^[ \t]*(?:-[ \t]+)?uses:[ \t]*['\"]?({re.escape(OWNER_REPO)}/[^\s'\"#]*)", re.M)
YAML_BLOCK = re.compile(r"^```ya?ml[ \t]*\n(.*?)^```", re.M | re.S)
RELEASE_TAG = re.compile(r"v\d+(\.\d+){0,2}")
COMMIT_SHA = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class Step:
    source: str  # where it is documented, e.g. README.md block 2
    uses: str
    with_: dict = field(default_factory=dict)

    @property
    def path(self) -> str:
        return self.uses[len(OWNER_REPO) + 1 :].partition("@")[0]

    @property
    def ref(self) -> str:
        return self.uses.partition("@")[2]


def _steps_in(node) -> list[dict]:
    """Every mapping with a `uses:` of this repository, anywhere in a parsed YAML document."""
    found = []
    if isinstance(node, dict):
        if isinstance(node.get("uses"), str) and node["uses"].startswith(OWNER_REPO + "/"):
            found.append(node)
        for value in node.values():
            found += _steps_in(value)
    elif isinstance(node, list):
        for item in node:
            found += _steps_in(item)
    return found


def _step(source: str, node: dict) -> Step:
    with_ = node.get("with") or {}
    assert isinstance(with_, dict), f"{source}: `with:` of {node['uses']} is not a mapping"
    return Step(source, node["uses"], {str(k): v for k, v in with_.items()})


def doc_steps() -> list[Step]:
    """The steps of the ```yaml blocks of README.md and docs/*.md. A block may elide the lines
    between the trigger and the step with a `...` line, which is YAML's own document-end marker: each
    document is parsed on its own, and every document holding a `uses:` of this repository must parse."""
    steps = []
    for doc in DOCS:
        steps += _doc_steps(doc)
    return steps


def _doc_steps(doc: Path) -> list[Step]:
    steps = []
    for number, block in enumerate(YAML_BLOCK.finditer(doc.read_text()), 1):
        for document in re.split(r"^\.\.\.[ \t]*$", block.group(1), flags=re.M):
            if not USES_LINE.search(document):
                continue
            source = f"{doc.relative_to(ROOT)} yaml block {number}"
            try:
                parsed = yaml.safe_load(textwrap.dedent(document))
            except yaml.YAMLError as error:
                pytest.fail(f"{source}: the part holding `uses:` is not valid YAML: {error}")
            found = _steps_in(parsed)
            assert len(found) == len(USES_LINE.findall(document)), f"{source}: a `uses:` line is not a step"
            steps += [_step(source, node) for node in found]
    return steps


def example_steps() -> list[Step]:
    steps = []
    for path in EXAMPLES:
        source = f"examples/workflows/{path.name}"
        found = _steps_in(yaml.safe_load(path.read_text()))
        assert len(found) == len(USES_LINE.findall(path.read_text())), f"{source}: a `uses:` line is not a step"
        steps += [_step(source, node) for node in found]
    return steps


DOCUMENTED = doc_steps() + example_steps()


def _id(step: Step) -> str:
    return f"{step.source}: {step.uses}"


def test_every_documented_uses_line_is_found():
    """No `uses:` line of this repository hides where the parametrized tests below cannot see it:
    outside a ```yaml block of the docs, say."""
    doc_lines = [line for path in DOCS for line in USES_LINE.findall(path.read_text())]
    example_lines = [line for path in EXAMPLES for line in USES_LINE.findall(path.read_text())]
    assert sorted(doc_lines + example_lines) == sorted(step.uses for step in DOCUMENTED)
    documented = {step.path for step in DOCUMENTED}
    actions = {str(path.parent.relative_to(ROOT)) for path in ROOT.glob("actions/*/action.yml")}
    assert actions <= documented, f"actions the docs never show a `uses:` line for: {actions - documented}"


@pytest.mark.parametrize("step", DOCUMENTED, ids=_id)
def test_documented_uses_names_an_action_of_this_repo(step):
    if COMMIT_SHA.fullmatch(step.ref):
        comments = {
            match.group(1)
            for text in [*(path.read_text() for path in DOCS), *(path.read_text() for path in EXAMPLES)]
            for match in re.finditer(rf"uses:[ \t]*{re.escape(step.uses)}[ \t]+#[ \t]*(\S+)", text)
        }
        unnamed = f"{step.source}: {step.uses} is pinned by SHA without a `# vN` comment naming its release"
        assert comments, unnamed
        assert all(RELEASE_TAG.fullmatch(comment) for comment in comments), unnamed
    else:
        assert RELEASE_TAG.fullmatch(step.ref), (
            f"{step.source}: {step.uses} is pinned to neither a release tag nor a SHA"
        )
    folder = (ROOT / step.path).resolve()
    assert folder.is_relative_to(ROOT), f"{step.source}: {step.uses} leaves the repository"
    assert folder != ROOT, f"{step.source}: {step.uses} names the repository, not an action folder in it"
    assert (folder / "action.yml").is_file(), (
        f"{step.source}: {step.uses} names {step.path}/, which holds no action.yml "
        f"(the actions are {sorted(str(p.parent.relative_to(ROOT)) for p in ROOT.glob('actions/*/action.yml'))})"
    )
    inputs = yaml.safe_load((folder / "action.yml").read_text()).get("inputs") or {}
    unknown = sorted(set(step.with_) - set(inputs))
    assert not unknown, f"{step.source}: {step.uses} has no input(s) {unknown}; it has {sorted(inputs)}"
    missing = sorted(
        name
        for name, spec in inputs.items()
        if spec.get("required") and "default" not in spec and name not in step.with_
    )
    assert not missing, f"{step.source}: {step.uses} requires input(s) {missing}"


# --- run by act -------------------------------------------------------------------------------------

# Per action: inputs added to the documented ones so the action refuses at once, with exit 2, and the
# message that proves it was our action that refused. {n} tells the steps' messages apart.
STOPPERS = {
    "actions/pr-validate": ({"working-directory": "{missing}"}, "--repo {missing} does not exist"),
    "actions/master-build": ({"working-directory": "{missing}"}, "--repo {missing} does not exist"),
    # a missing working-directory is no refusal for promote (it opens the default sqlite store there)
    "actions/register-model": ({"threshold": "not-a-rule-{n}"}, "malformed threshold 'not-a-rule-{n}'"),
}


def _workflow(steps: list[Step], tmp: Path) -> tuple[dict, list[str]]:
    job_steps, expected = [], []
    for n, step in enumerate(steps):
        assert step.path in STOPPERS, f"no early-refusal input known for {step.path}; add one to STOPPERS"
        extra, message = STOPPERS[step.path]
        values = {"n": n, "missing": str(tmp / f"no-such-project-{n}")}
        with_ = {**step.with_, **{key: value.format(**values) for key, value in extra.items()}}
        job_steps.append({"id": f"s{n}", "continue-on-error": True, "uses": step.uses, "with": with_})
        expected.append(message.format(**values))
    outcomes = " ".join(f"${{{{ steps.s{n}.outcome }}}}" for n in range(len(steps)))
    job_steps.append({"name": "Outcomes", "shell": "bash", "run": f"echo 'OUTCOMES: {outcomes}'"})
    workflow = {
        "name": "documented uses lines under act",
        "on": "workflow_dispatch",
        "permissions": {},
        "jobs": {
            "documented": {
                "runs-on": "ubuntu-latest",
                "timeout-minutes": 10,
                "permissions": {"contents": "read"},
                "steps": job_steps,
            }
        },
    }
    return workflow, expected


def _release_tree(dest: Path) -> Path:
    """This checkout as a release tag would hold it: the files git tracks or would track, as they are
    now (uncommitted edits included), without .venv and the like. act tars the folder it maps on
    every read of the action, so mapping the working tree itself costs a minute per step."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted but not yet staged is still listed
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def _run_act(workflow: Path, release: Path, refs: list[str], home: Path, tmp: Path) -> subprocess.CompletedProcess:
    """As tests/actions/test_actions.py runs act, plus org/mlops-actions at every documented ref mapped
    to a copy of this checkout. Run from an empty git repository: the workflow under test needs no
    checkout."""
    subprocess.run(["git", "init", "-q", str(tmp / "workspace")], check=True)
    event = tmp / "event.json"
    event.write_text("{}")
    return subprocess.run(
        act_command("workflow_dispatch", workflow, event, *[f"{OWNER_REPO}@{ref}={release}" for ref in refs]),
        cwd=tmp / "workspace",
        env=act_environment(home),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
        check=False,
    )


@pytest.mark.integration
def test_documented_uses_lines_run_our_actions_under_act(act_home, tmp_path):  # noqa: F811
    steps = list(DOCUMENTED)
    refs = sorted({step.ref for step in steps})
    workflow, expected = _workflow(steps, tmp_path)
    path = tmp_path / "documented.yml"
    path.write_text(yaml.safe_dump(workflow, sort_keys=False))
    assert shutil.which("act")

    release = _release_tree(tmp_path / "release")
    result = _run_act(path, release, refs, act_home, tmp_path)

    log = result.stdout + result.stderr
    (tmp_path / "act.log").write_text(log)
    assert result.returncode == 0, log[-6000:]
    for ref in refs:
        read = f"LocalRepositoryCache read cachedir {OWNER_REPO} with ref {ref} and subpath '' from {release}"
        assert read in log, log[-6000:]
    for step, message in zip(steps, expected, strict=True):
        assert message in log, f"{step.source}: {step.uses} did not run our action (no {message!r})\n{log[-6000:]}"
        status = re.search(r"exit status (\d+)", log[log.index(message) :])
        assert status, f"{step.source}: {step.uses}: no exit status after {message!r}"
        assert status.group(1) == "2", f"{step.source}: {step.uses} exited {status.group(1)}, not 2 (bad input)"
    assert "OUTCOMES: " + " ".join(["failure"] * len(steps)) in log, log[-6000:]
