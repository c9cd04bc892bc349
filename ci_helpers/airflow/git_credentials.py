"""Git credentials the way Airflow users keep them: an Airflow Connection, named by `git_conn_id=`.

- login and password: a user and a token (or password) for https:// repositories; a token alone
  is fine (the password field), token-checking servers accept any login;
- extra `private_key` (the key's text) or `key_file` (a path on the worker), with an optional extra
  `known_hosts` (its text): an SSH key for ssh:// and git@host:path repositories (no passphrase).

Airflow masks the Connection's password and private_key in task logs; a key read from key_file is
registered with its masker too. The Connection is read through the Task SDK
(`BaseHook.get_connection`): inside a task from the API server or a secrets backend, anywhere from
`AIRFLOW_CONN_<ID>` (JSON or URI form).
"""

from __future__ import annotations

from pathlib import Path

from ..adapters.git_checkout import GitCredentials
from ..errors import ConfigError

_FIELDS = "login and password (a token) for https, or extra private_key / key_file (with known_hosts) for ssh"


def credentials_from_connection(conn_id: str | None) -> GitCredentials | None:
    """The git credentials that the Airflow Connection `conn_id` holds; None for no conn_id (git
    then uses the worker's own: its credential helper, ssh agent, GIT_ASKPASS...).

    ConfigError (never retried) when no Connection has that id, when it holds no credentials, or
    when its key_file cannot be read."""
    if not conn_id:
        return None
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise ConfigError(
            f"git_conn_id={conn_id!r}: no Airflow Connection has that id; create it ({_FIELDS}) or fix git_conn_id="
        ) from None
    extra = connection.extra_dejson or {}
    private_key = _text(extra.get("private_key"))
    key_file = _text(extra.get("key_file"))
    if private_key is None and key_file is not None:
        private_key = _read_key_file(conn_id, key_file)
    credentials = GitCredentials(
        username=connection.login or None,
        password=connection.password or None,
        private_key=_unescaped(private_key),
        known_hosts=_unescaped(_text(extra.get("known_hosts"))),
    )
    if not (credentials.password or credentials.private_key):
        raise ConfigError(f"Airflow Connection {conn_id!r} (git_conn_id=) holds no git credentials; set its {_FIELDS}")
    return credentials


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _unescaped(text: str | None) -> str | None:
    """A key or known_hosts pasted on one line with literal "\\n" (a URI-form Connection) gets its newlines."""
    if text is not None and "\n" not in text and "\\n" in text:
        return text.replace("\\n", "\n")
    return text


def _read_key_file(conn_id: str, key_file: str) -> str:
    path = Path(key_file).expanduser()
    try:
        key = path.read_text()
    except OSError as error:
        raise ConfigError(
            f"Airflow Connection {conn_id!r}: its key_file {path} cannot be read on this worker ({error.strerror}); "
            "put the key there on every worker, or its text in the extra private_key"
        ) from None
    from airflow.sdk.log import mask_secret

    mask_secret(key)
    return key
