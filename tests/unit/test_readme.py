"""The README's CLI reference is generated from the commands, so it cannot drift."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_matches_the_commands():
    import importlib.util

    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "scripts" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (ROOT / "README.md").read_text()
    assert module.render() in readme, "run: .venv/bin/python scripts/cli_reference.py --write"
    assert module.render_actions() in readme, "run: .venv/bin/python scripts/cli_reference.py --write"


def test_action_tables_list_every_input_and_output_of_the_action_files():
    import yaml

    readme = (ROOT / "README.md").read_text()
    for path in sorted((ROOT / "actions").glob("*/action.yml")):
        action = yaml.safe_load(path.read_text())
        section = readme.split(f"### `{path.parent.name}`", 1)[1].split("### ", 1)[0]
        for name in [*action["inputs"], *action["outputs"]]:
            assert f"| `{name}` |" in section, f"README lacks {path.parent.name} {name}"


def test_quick_start_is_exactly_two_commands():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    for command in commands:
        assert (ROOT / command.split()[1]).is_file()
