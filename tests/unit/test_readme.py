"""The README's quick start, and the CLI and action reference in docs/, generated from the commands
and the action.yml files, so that it cannot drift."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI_DOC = ROOT / "docs" / "cli.md"
ACTIONS_DOC = ROOT / "docs" / "actions.md"
REGENERATE = "run: .venv/bin/python scripts/cli_reference.py --write"


def _cli_reference():
    import importlib.util

    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "scripts" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_matches_the_commands():
    module = _cli_reference()
    assert module.render() in CLI_DOC.read_text(), REGENERATE
    assert module.render_actions() in ACTIONS_DOC.read_text(), REGENERATE


def test_cli_reference_shows_real_defaults_and_one_env_var_per_cell():
    rows = [line for line in _cli_reference().render().splitlines() if line.startswith("| `-")]
    assert rows
    for row in rows:
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]]
        assert len(cells) == 4, row
        _, envvar, default, _ = cells
        assert re.fullmatch(r"(`[A-Z][A-Z0-9_]*`)?", envvar), f"not one env var: {row}"
        assert "Sentinel" not in default, row
        assert "object at 0x" not in default, row
    tracking = next(row for row in rows if row.startswith("| `--tracking-uri`"))
    assert "| `CI_HELPERS_TRACKING_URI` |" in tracking
    assert "Also read from `MLFLOW_TRACKING_URI`." in tracking


def test_the_readme_links_to_the_reference():
    readme = (ROOT / "README.md").read_text()
    assert "(docs/cli.md)" in readme
    assert "(docs/actions.md)" in readme


def test_action_tables_list_every_input_and_output_of_the_action_files():
    import yaml

    reference = ACTIONS_DOC.read_text()
    for path in sorted((ROOT / "actions").glob("*/action.yml")):
        action = yaml.safe_load(path.read_text())
        section = reference.split(f"### `{path.parent.name}`", 1)[1].split("### ", 1)[0]
        for name in [*action["inputs"], *action["outputs"]]:
            assert f"| `{name}` |" in section, f"docs/actions.md lacks {path.parent.name} {name}"


def test_quick_start_is_exactly_two_commands():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    for command in commands:
        assert (ROOT / command.split()[1]).is_file()


def test_readme_stays_short():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) < 250, f"README.md has {len(lines)} lines: move the details to docs/"
