"""Print (or --write into docs/cli.md and docs/actions.md) the CLI and action references, generated
from the click commands and the action.yml files so that the docs cannot drift."""

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
            # an empty default is ci-helpers' own (or mlops.yaml's), which the description names
            default = "(required)" if spec.get("required") else f"`{spec['default']}`" if spec.get("default") else ""
            lines.append(f"| `{key}` | {default} | {_cell(spec['description'])} |")
        lines += ["", "| output | description |", "| --- | --- |"]
        lines += [f"| `{key}` | {_cell(spec['description'])} |" for key, spec in action["outputs"].items()]
        lines.append("")
    lines.append(ACTIONS_END)
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Text for a table cell: a `|` would end the cell, and outside code spans `<name>` would be
    taken for an HTML tag and vanish."""
    parts = text.replace("|", "\\|").split("`")
    return "`".join(part if index % 2 else part.replace("<", "&lt;") for index, part in enumerate(parts))


def _default(param: click.Option) -> str:
    default = param.default
    # click 8.2+ marks "no default" with a sentinel object, not None
    if default in (None, (), False) or callable(default) or type(default).__name__ == "Sentinel":
        return ""
    if param.is_flag and param.secondary_opts:  # an on/off pair: the spelling that is the default
        return f"`{param.opts[-1]}`"
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
            # one variable per cell: the option's own; the others it also reads go in the description
            envvar = f"`{envvars[0]}`" if envvars else ""
            help_text = param.help or ""
            if envvars[1:]:
                help_text += " Also read from " + ", ".join(f"`{name}`" for name in envvars[1:]) + "."
            lines.append(f"| {flag} | {envvar} | {_default(param)} | {_cell(help_text)} |")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def _replace(text: str, start: str, end: str, body: str) -> str:
    head, _, tail = text.partition(start)
    _, _, tail = tail.partition(end)
    return head + body + tail


CLI_DOC, ACTIONS_DOC = ROOT / "docs" / "cli.md", ROOT / "docs" / "actions.md"


def write() -> None:
    CLI_DOC.write_text(_replace(CLI_DOC.read_text(), START, END, render()))
    ACTIONS_DOC.write_text(_replace(ACTIONS_DOC.read_text(), ACTIONS_START, ACTIONS_END, render_actions()))


if __name__ == "__main__":
    if "--write" in sys.argv:
        write()
    else:
        print(render())
        print(render_actions())
