"""`ci-helpers verify`: click wiring only (the flow is ci_helpers/flows/verify.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli import ConfiguredCommand, _repo_option, _tracking_uri, handles_errors, remote_option, tracking_uri_option


@click.command("verify", cls=ConfiguredCommand)
@click.argument("model", metavar="MODEL[@ALIAS|/VERSION]")
@_repo_option(
    "Project root: where mlops.yaml is read, the default sqlite:///<repo>/mlflow.db lives, and (with "
    "--against-remote) the DVC checkout whose remote is read."
)
@click.option(
    "--against-remote",
    is_flag=True,
    envvar="CI_HELPERS_AGAINST_REMOTE",
    show_envvar=True,
    help="Also check that the DVC remote the statement records (the checkout's --remote must be it, else a "
    "mismatch) holds the model out at the lock hash the statement records: its bytes (a directory's manifest "
    "too) hash to that md5. Needs a checkout of the project as --repo.",
)
@click.option(
    "--download-to",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="CI_HELPERS_DOWNLOAD_TO",
    show_envvar=True,
    help="Keep the verified files in this new or empty folder (only when they verified), so that a deploy "
    "serves exactly them.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the verified facts (model_uri among them) as JSON.")
@remote_option  # type: ignore[has-type]  # mypy, in the cli <-> cli_verify import cycle
@tracking_uri_option  # type: ignore[has-type]
@handles_errors
def verify_command(
    model: str,
    repo: Path,
    against_remote: bool,
    download_to: Path | None,
    as_json: bool,
    remote: str | None,
    tracking_uri: str | None,
) -> None:
    """Check a registered version against its provenance statement: the files MLflow serves against the
    statement's sha256 subjects, and the statement against the version's digest tag. MODEL is churn@production,
    churn/3, or churn (its production alias). On success it prints, and outputs as `model-uri`, the version
    pinned by number (models:/churn/3): deploy that, not the alias, which may move after the check. Exit 0 when
    all match, 1 naming each mismatch, 2 for a version without provenance or an unknown model, 3 when MLflow,
    the artifact store or the remote is unreachable."""
    from .flows.verify import verify_and_report

    verify_and_report(_tracking_uri(tracking_uri, repo), model, against_remote, repo, remote, download_to, as_json)
    sys.exit(0)
