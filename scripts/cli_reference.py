"""Print (or --write into README.md) the CLI and action references, generated from the click
commands and the action.yml files so that the docs cannot drift."""

from __future__ import annotations

import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ci_helpers.cli import cli  # noqa: E402

START, END = "<!-- cli-reference:start -->", "<!-- cli-reference:end -->"
ACTIONS_START, ACTIONS_END = "<!-- action-reference:start -->", "<!-- action-reference:end -->"
USAGE = {
    "pr-validate": "on: pull_request\n...\n      - uses: org/mlops-actions/actions/pr-validate@v1\n        with:\n"
    "          eval-stage: evaluate\n          threshold: metrics.r2_score>=0.75",
    "master-build": "on: push (branches: [main])\n...\n      - uses: org/mlops-actions/actions/master-build@v1\n        with:\n"
    "          model-name: housing\n          alias: staging",
    "register-model": "on: workflow_dispatch\n...\n      - uses: org/mlops-actions/actions/register-model@v1\n        with:\n"
    "          command: promote\n          model-name: housing\n"
    "          from-alias: staging\n          to-alias: production",
}


def render_actions() -> str:
    import yaml

    lines = [ACTIONS_START, ""]
    for path in sorted((ROOT / "actions").glob("*/action.yml")):
        name = path.parent.name
        action = yaml.safe_load(path.read_text())
        lines += [
            f"### `{name}`",
            "",
            " ".join(action["description"].split()),
            "",
            "```yaml",
            USAGE.get(name, ""),
            "```",
            "",
            "| input | default | description |",
            "| --- | --- | --- |",
        ]
        for key, spec in action["inputs"].items():
            default = "(required)" if spec.get("required") else f"`{spec.get('default', '')}`"
            lines.append(f"| `{key}` | {default} | {spec['description']} |")
        lines += ["", "| output | description |", "| --- | --- |"]
        lines += [f"| `{key}` | {spec['description']} |" for key, spec in action["outputs"].items()]
        lines.append("")
    lines.append(ACTIONS_END)
    return "\n".join(lines)


def _default(param: click.Parameter) -> str:
    default = param.default
    # click 8.2+ marks "no default" with a sentinel object, not None
    if default in (None, (), False) or callable(default) or type(default).__name__ == "Sentinel":
        return ""
    return f"`{default}`"


def render() -> str:
    lines = [START, ""]
    for name, command in sorted(cli.commands.items()):
        first, _, rest = (command.help or "").strip().partition("\n")
        lines += [f"### `ci-helpers {name}`", "", first.strip(), ""]
        if rest.strip():
            lines += [" ".join(rest.split()), ""]
        lines += ["| option | env var | default | description |", "| --- | --- | --- | --- |"]
        for param in command.params:
            if not isinstance(param, click.Option) or param.name == "help":
                continue
            flag = " / ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
            if param.multiple:
                flag += " (repeatable)"
            if isinstance(param.type, click.Choice):
                flag += " " + "\\|".join(param.type.choices)
            envvars = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar or ())
            envvar = " ".join(f"`{name}`" for name in envvars)
            help_text = (param.help or "").replace("|", "\\|")
            lines.append(f"| {flag} | {envvar} | {_default(param)} | {help_text} |")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def _replace(text: str, start: str, end: str, body: str) -> str:
    head, _, tail = text.partition(start)
    _, _, tail = tail.partition(end)
    return head + body + tail


def write(readme: Path = ROOT / "README.md") -> None:
    text = _replace(readme.read_text(), START, END, render())
    readme.write_text(_replace(text, ACTIONS_START, ACTIONS_END, render_actions()))


if __name__ == "__main__":
    if "--write" in sys.argv:
        write()
    else:
        print(render())
        print(render_actions())
