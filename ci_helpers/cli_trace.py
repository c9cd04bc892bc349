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
        "whole remote). Without it, each shows 'not checked' (then --remote is refused).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the same facts as JSON.")
    @handles_errors
    def trace_command(repo, spec, tracking_uri, remote, remote_check, as_json) -> None:
        """Walk from a model version (MODEL, MODEL@ALIAS or MODEL/VERSION) back to its run, commit, PR, data, CI run, alias moves.

        Read only, offline from MLflow and a clone (--repo); whether the DVC remote still holds each
        object is asked of it. With $GITHUB_TOKEN set (never an option: argv shows in `ps`), GitHub's
        API is asked which pull request brought a commit in when no merge or squash commit message
        names one ($GITHUB_API_URL, $GITHUB_REPOSITORY or a github.com origin). Exits 3 after the
        output when the remote or the API could not be asked (what they would say shows as
        'unknown'), 2 on an unknown model, alias or version, or a refused token.
        """
        import os

        from .cli import _tracking_uri
        from .flows.trace import TraceOptions, trace
        from .report.trace import render_trace, trace_json

        result = trace(
            TraceOptions(
                repo,
                spec,
                _tracking_uri(tracking_uri, repo),
                remote,
                remote_check,
                os.environ.get("GITHUB_TOKEN") or None,
            )
        )
        if as_json:
            click.echo(json.dumps(trace_json(result.lineage), indent=2))
        else:
            click.echo(render_trace(result.lineage), nl=False)
        if result.error is not None:
            raise result.error

    return trace_command


trace_command = _trace_command()
