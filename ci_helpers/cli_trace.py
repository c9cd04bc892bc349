"""`ci-helpers trace`: click wiring only (the walk is flows/trace, the tables report/trace)."""

from __future__ import annotations

import json

import click

from .cli import ConfiguredCommand, handles_errors, registry_repo_option, remote_option, tracking_uri_option


def _trace_command() -> click.Command:
    """Built in a function: mypy infers cli.py's shared options before it reads their use here
    (cli.py imports this module at its end, a cycle)."""

    @click.command("trace", cls=ConfiguredCommand)
    @click.argument("spec", metavar="MODEL[@ALIAS|/VERSION]")
    @registry_repo_option
    @tracking_uri_option
    @remote_option
    @click.option(
        "--remote-check/--no-remote-check",
        default=True,
        show_default=True,
        envvar="CI_HELPERS_TRACE_REMOTE_CHECK",
        show_envvar=True,
        help="Ask the DVC remote whether it still holds each object (existence calls, never a listing of the "
        "whole remote). Without it, each shows 'not checked'.",
    )
    @click.option(
        "--github-token",
        envvar="GITHUB_TOKEN",
        show_envvar=True,
        help="Ask GitHub's API which pull request brought a commit in, when no merge or squash commit message "
        "names one ($GITHUB_API_URL, $GITHUB_REPOSITORY or a github.com origin).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the same facts as JSON.")
    @handles_errors
    def trace_command(repo, spec, tracking_uri, remote, remote_check, github_token, as_json) -> None:
        """Walk from a model version back to its run, commit, pull request, data, CI run and alias moves.

        Read only, offline from MLflow and a clone (--repo); whether the DVC remote still holds each
        object is asked of it. Exits 3 after the output when the remote could not be asked (its
        objects show as 'unknown'), 2 on an unknown model, alias or version.
        """
        from .cli import _tracking_uri
        from .flows.trace import TraceOptions, trace
        from .report.trace import render_trace, trace_json

        result = trace(
            TraceOptions(repo, spec, _tracking_uri(tracking_uri, repo), remote, remote_check, github_token or None)
        )
        if as_json:
            click.echo(json.dumps(trace_json(result.lineage), indent=2))
        else:
            click.echo(render_trace(result.lineage), nl=False)
        if result.remote_error is not None:
            raise result.remote_error

    return trace_command


trace_command = _trace_command()
