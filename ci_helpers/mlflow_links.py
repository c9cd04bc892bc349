"""Where a reader finds a run or a model version in MLflow's web UI.

Only an http(s) tracking URI has a UI to link to. Its credentials never reach the link: the
user:password part is dropped, the query and fragment too, and any known secret left is masked.
For sqlite: and file: stores there is no page: the report shows the run id and `models:/NAME/V`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from .adapters.redact import redact

_HOST = re.compile(r"^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|[0-9A-Fa-f:.]+)$")


@dataclass(frozen=True)
class Link:
    """What the report shows: `text` always, `url` when the store has a web UI."""

    text: str
    url: str | None = None


def ui_base(tracking_uri: str) -> str | None:
    """The tracking server's UI root without credentials, or None when the URI is no http(s) one."""
    try:
        parts = urlsplit(tracking_uri.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or not _HOST.match(parts.hostname):
        return None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = f"{host}:{port}" if port else host
    # percent-encoded, so that no `(`, `)`, space or `<` in the path can end the markdown link
    path = quote(parts.path.rstrip("/"), safe="/%-._~!$&'*+,;=:@")
    return redact(urlunsplit((parts.scheme.lower(), netloc, path, "", "")))


def run_link(tracking_uri: str, experiment_id: str, run_id: str) -> Link:
    base = ui_base(tracking_uri)
    url = f"{base}/#/experiments/{quote(experiment_id, safe='')}/runs/{quote(run_id, safe='')}" if base else None
    return Link(f"run {run_id}", url)


def model_version_link(tracking_uri: str, name: str, version: str) -> Link:
    base = ui_base(tracking_uri)
    url = f"{base}/#/models/{quote(name, safe='')}/versions/{quote(version, safe='')}" if base else None
    return Link(f"models:/{name}/{version}", url)
