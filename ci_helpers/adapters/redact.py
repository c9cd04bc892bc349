"""Keep secrets out of every message this package prints."""

from __future__ import annotations

import os
import re

SECRET_ENV_VARS = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "CI_HELPERS_GIT_TOKEN",
    "CI_HELPERS_GIT_ASKPASS_PASSWORD",  # git_checkout's: the token its askpass script hands to git
    "CI_JOB_TOKEN",
    "CI_HELPERS_GITLAB_TOKEN",
    "GITLAB_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CLIENT_SECRET",
    "AZURE_CLIENT_SECRET",
)
# Variables whose value holds secrets among harmless parts (an Azure connection string names its
# endpoint, which an error must show): only the secret fields' values are secret.
SECRET_FIELD_ENV_VARS = ("AZURE_STORAGE_CONNECTION_STRING",)
# The secret fields of a connection string (Azure's `AccountKey=...;`), of a SAS token or URL query
# (`sig=...`), and of an `az://`/`gs://` style config echoed as key=value or key: value.
_SECRET_FIELDS = re.compile(
    r"(?P<key>\b(?:AccountKey|SharedAccessSignature|SharedAccessKey|sig|client_secret|account_key|sas_token|"
    r"private_key|private_key_id|refresh_token|access_token)[\"']?\s*[=:]\s*[\"']?)(?P<value>[^;&\s\"',]+)",
    re.IGNORECASE,
)
# The lookbehind makes a scheme start only where a run of scheme characters starts: without it, a
# long run with no "://" is rescanned from each of its characters (quadratic: minutes for 2 MB).
_URL_USERINFO = re.compile(r"(?<![a-zA-Z0-9+.-])(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
MASK = "***"
# A private key pasted whole (a service-account JSON where a path was expected, a PEM in a message):
# its lines may be real newlines or JSON's escaped "\n".
_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", re.DOTALL)


def secret_values() -> list[str]:
    """The secrets this process knows of, longest first so that no part leaks."""
    values = [os.environ.get(name, "") for name in SECRET_ENV_VARS]
    for name in SECRET_FIELD_ENV_VARS:
        values += [match["value"] for match in _SECRET_FIELDS.finditer(os.environ.get(name, ""))]
    credentials = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS", "")
    if credentials.lstrip().startswith("{"):  # the key's JSON itself, where a path was expected
        values.append(credentials)
    return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)


def _redact_fields(text: str) -> str:
    """The values of secret fields masked (`AccountKey=***;`), scanned only when one may be there."""
    lowered = text.lower()
    if not any(word in lowered for word in ("accountkey", "sharedaccess", "sig", "secret", "key", "token")):
        return text
    return _SECRET_FIELDS.sub(lambda m: m.group("key") + MASK, text)


def _redact_userinfo(text: str) -> str:
    """The URL credentials masked, the regex run only on the lines holding a "://": a match never
    spans lines, and scanning every letter of a long log for a scheme costs ~15 ms a MB."""
    parts, done = [], 0
    while (hit := text.find("://", done)) != -1:
        start = text.rfind("\n", done, hit) + 1 or done
        end = text.find("\n", hit)
        end = len(text) if end == -1 else end
        parts += [text[done:start], _URL_USERINFO.sub(lambda m: m.group("scheme") + MASK + "@", text[start:end])]
        done = end
    return "".join([*parts, text[done:]]) if parts else text


def redact(text: str) -> str:
    """Remove credentials in URLs and connection strings, and the values of known secret variables."""
    if "PRIVATE KEY-----" in text:  # before the fields: `"private_key": "-----BEGIN` would hide its start
        text = _PEM_BLOCK.sub(MASK, text)
    text = _redact_fields(_redact_userinfo(text))
    for value in secret_values():
        text = text.replace(value, MASK)
    return text


class RedactingStream:
    """A text stream that redacts what is written to it: installed on stdout and stderr by the CLI,
    it also covers lines printed by the libraries underneath (MLflow's own "View run at <URL>")."""

    def __init__(self, stream) -> None:
        self._stream = stream

    @property
    def unredacted(self):
        """The stream underneath, for the one line that must carry a secret: `::add-mask::`."""
        return self._stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def install_redacting_streams() -> None:
    """Redact everything this process prints to stdout and stderr (once)."""
    import sys

    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if not isinstance(stream, RedactingStream):
            setattr(sys, name, RedactingStream(stream))
