"""What differs between DVC remote types (S3, Azure Blob, GCS, SSH, WebDAV...): where the service is,
how to tell in seconds that it is down, whether a key file can be used at all, and the variables its
client library needs. Nothing here talks to DVC: the DVC adapter reads the remote's settings and asks.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

S3_SCHEMES = ("s3", "s3a")
AZURE_SCHEMES = ("azure", "az")
GS_SCHEMES = ("gs", "gcs")
PROBE_SECONDS = 3.0
# gcsfs (2025 and newer) asks a gRPC control plane for each bucket's layout; a server other than
# Google's (an emulator, a gateway) has none, and each ask waits 60 s before gcsfs falls back.
_GCS_ELSEWHERE = {"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}


def scheme_of(url: str) -> str:
    return url.partition("://")[0].lower() if "://" in url else ""


@dataclass(frozen=True)
class RemoteSettings:
    """One DVC remote as its config sections say (project config and `.dvc/config.local` merged)."""

    name: str
    url: str
    settings: Mapping[str, str] = field(default_factory=dict)

    @property
    def scheme(self) -> str:
        return scheme_of(self.url)

    def service_endpoint(self, environ: Mapping[str, str] = os.environ) -> str | None:
        """The server a remote whose URL does not name it talks to (S3, Azure, GCS); None for one whose
        URL does (SSH, WebDAV, HTTP, a folder) or for the cloud's default service."""
        if self.scheme in S3_SCHEMES:
            return (
                self.settings.get("endpointurl")
                or environ.get("AWS_ENDPOINT_URL_S3")
                or environ.get("AWS_ENDPOINT_URL")
                or None
            )
        if self.scheme in AZURE_SCHEMES:
            connection = self.settings.get("connection_string") or environ.get("AZURE_STORAGE_CONNECTION_STRING", "")
            fields = dict(part.split("=", 1) for part in connection.split(";") if "=" in part)
            if fields.get("BlobEndpoint"):
                return fields["BlobEndpoint"]
            account = self.settings.get("account_name") or fields.get("AccountName")
            return f"https://{account}.blob.core.windows.net" if account else None
        if self.scheme in GS_SCHEMES:
            emulator = environ.get("STORAGE_EMULATOR_HOST")
            return self.settings.get("endpointurl") or (emulator if emulator else None)
        return None

    def client_environment(self, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
        """Variables the remote's client library needs here, unless the user set them: a GCS remote on
        another server than Google's skips gcsfs's gRPC layout lookup."""
        if self.scheme in GS_SCHEMES and self.service_endpoint(environ):
            return {name: value for name, value in _GCS_ELSEWHERE.items() if name not in environ}
        return {}

    def login_user(self) -> str | None:
        """The user an SSH or WebDAV remote logs in as: its `user` setting, else the URL's."""
        try:
            from_url = urlsplit(self.url).username
        except ValueError:
            from_url = None
        return self.settings.get("user") or from_url

    def unusable_key_file(self, environ: Mapping[str, str] = os.environ) -> str | None:
        """Why the GCS key file the remote would use cannot be used (absent, not a key), before any
        request: gcsfs takes a path that is no file for a raw token and asks Google about it, and
        falls back to anonymous access on a malformed key. None when there is none, or it loads."""
        if self.scheme not in GS_SCHEMES or str(self.settings.get("allow_anonymous_login", "")).lower() == "true":
            return None
        setting = "credentialpath" if self.settings.get("credentialpath") else "GOOGLE_APPLICATION_CREDENTIALS"
        path = self.settings.get("credentialpath") or environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if not path:
            return None
        if path.lstrip().startswith("{"):
            return f"{setting} holds what looks like the key's JSON itself, not the path of a file holding it"
        if not os.path.isfile(path):
            shown = path if len(path) <= 200 and not any(c.isspace() for c in path) else "(a value that is no path)"
            return f"{setting} names no file: {shown}"
        try:
            import google.auth

            google.auth.load_credentials_from_file(path)
        except Exception as error:  # google-auth raises several types for a file that is no usable key
            return f"{setting} names a file that is no usable key ({type(error).__name__})"
        return None


def probe_address(remote: RemoteSettings, environ: Mapping[str, str] = os.environ) -> tuple[str, int] | None:
    """(host, port) to connect to before in-process work on an Azure or GCS remote, whose SDKs retry
    a refused connection for about a minute a request; None for the other types (they fail fast)."""
    if remote.scheme not in AZURE_SCHEMES + GS_SCHEMES:
        return None
    endpoint = remote.service_endpoint(environ)
    if not endpoint:
        return None
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    if not parts.hostname:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return parts.hostname, port


def check_connects(address: tuple[str, int], timeout: float = PROBE_SECONDS) -> None:
    """ConnectionError when nothing accepts a TCP connection at `address` within `timeout`."""
    try:
        with socket.create_connection(address, timeout=timeout):
            pass
    except OSError as error:
        raise ConnectionError(f"cannot connect to {address[0]}:{address[1]}: {error}") from None
