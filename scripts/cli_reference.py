"""Print (or --write into README.md) the CLI reference generated from the click commands."""

from __future__ import annotations

import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ci_helpers.cli import cli  # noqa: E402

START, END = "<!-- cli-reference:start -->", "<!-- cli-reference:end -->"


def _default(param: click.Parameter) -> str:
    if param.default in (None, (), False) or callable(param.default):
        return ""
    return f"`{param.default}`"


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
            flag = " / ".join(f"`{o}`" for o in param.opts)
            if param.multiple:
                flag += " (repeatable)"
            if isinstance(param.type, click.Choice):
                flag += " " + "\\|".join(param.type.choices)
            envvar = f"`{param.envvar}`" if param.envvar else ""
            help_text = (param.help or "").replace("|", "\\|")
            lines.append(f"| {flag} | {envvar} | {_default(param)} | {help_text} |")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def write(readme: Path = ROOT / "README.md") -> None:
    text = readme.read_text()
    head, _, tail = text.partition(START)
    _, _, tail = tail.partition(END)
    readme.write_text(head + render() + tail)


if __name__ == "__main__":
    if "--write" in sys.argv:
        write()
    else:
        print(render())
