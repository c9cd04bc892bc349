"""The DVC remotes of the matrix (Azure Blob, GCS, SSH, WebDAV): their servers' and clients' own
words for rejected credentials are told apart from outages, and their secrets never print.

The texts are the ones observed against Azurite 3.37, gcp-storage-emulator, asyncssh and webdav4."""

from __future__ import annotations

import json

import pytest

from ci_helpers.adapters.auth import exception_rejection_reason, rejection_reason, remote_rejected
from ci_helpers.adapters.redact import redact

DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
PLANTED = "U2VjcmV0UGxhbnRlZEtleVRoYXRJc1dyb25nMTIzNDU2Nzg5MA=="


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # Azurite's answer to a wrong AccountKey (azure-core HttpResponseError)
        (
            "HttpResponseError: Server failed to authenticate the request. Make sure the value of the "
            "Authorization header is formed correctly including the signature.\nRequestId:feca0891\n"
            "ErrorCode:AuthorizationFailure",
            "AuthenticationFailed",
        ),
        ("ErrorCode:AuthorizationFailure", "AuthorizationFailure"),
        # Azure's own
        ("ErrorCode:AuthenticationFailed\nContent: <Code>AuthenticationFailed</Code>", "AuthenticationFailed"),
        ("ErrorCode:AuthorizationPermissionMismatch", "AuthorizationPermissionMismatch"),
        (
            "AzureAuthError: Authentication to Azure Blob Storage requires either account_name or connection_string.",
            "no usable Azure credentials",
        ),
        (
            "AzureAuthError: Authentication to Azure Blob Storage via connection string failed.",
            "no usable Azure credentials",
        ),
        # GCS: google-auth on a bad key file, Google's answer to a revoked key
        (
            "DefaultCredentialsError: File /k.json is not a valid json file.",
            "unusable key file",
        ),
        ("RefreshError: ('invalid_grant: Invalid JWT Signature.', {'error': 'invalid_grant'})", "invalid_grant"),
        ("401 Unauthorized: Anonymous caller does not have storage.objects.list access", "HTTP 401"),
        # SSH through asyncssh (DVC's SSH remote), and OpenSSH's client
        ("PermissionDenied: Permission denied for user dvc on host 127.0.0.1", "Permission denied"),
        ("dvc@127.0.0.1: Permission denied (publickey,password).", "Permission denied (publickey)"),
        # WebDAV through webdav4
        ("HTTPError: received 401 (Unauthorized)", "HTTP 401"),
        ("ERROR: unexpected error - received 403 (Forbidden)", "HTTP 403"),
    ],
)
def test_remote_rejections_are_told_apart_by_their_text(text, reason):
    assert rejection_reason(text) == reason


@pytest.mark.parametrize(
    "text",
    [
        # Azure SDK and gcsfs on a server that is down: an outage, retried, exit 3
        "ServiceRequestError: Cannot connect to host 127.0.0.1:41999 ssl:default [Connect call failed ('127.0.0.1', 41999)]",
        "ClientConnectorError: Cannot connect to host 127.0.0.1:41998 ssl:default [Connect call failed]",
        "FileNotFoundError: [Errno 2] No such container: 'dvcstore'",
        "PermissionError: [Errno 13] Permission denied: '/srv/dvc'",
        "HTTPError: received 503 (Service Unavailable)",
    ],
)
def test_remote_outages_are_not_rejections(text):
    assert rejection_reason(text) is None


def test_azure_sdk_error_is_a_rejection_by_its_code():
    from azure.core.exceptions import HttpResponseError

    error = HttpResponseError(message="Server failed to authenticate the request.\nErrorCode:AuthorizationFailure")
    assert exception_rejection_reason(error) == "AuthenticationFailed"


def _load_key(path):
    """What gcsfs does with a `credentialpath` (or GOOGLE_APPLICATION_CREDENTIALS) file."""
    from gcsfs.credentials import GoogleCredentials

    GoogleCredentials(project="p", access="read_only", token=str(path))


@pytest.mark.parametrize(
    "content",
    [
        "not json at all",  # JSONDecodeError inside gcsfs' credentials code
        json.dumps({"type": "authorized_user", "client_id": "x"}),  # KeyError 'refresh_token'
        json.dumps({"type": "service_account", "private_key": "nope"}),
    ],
)
def test_an_unusable_gcs_key_file_is_a_rejection(tmp_path, content):
    """Raised while loading the key, whatever its type: the setting is wrong, retrying cannot help."""
    key = tmp_path / "key.json"
    key.write_text(content)
    with pytest.raises((ValueError, KeyError)) as raised:  # JSONDecodeError is a ValueError
        _load_key(key)
    assert exception_rejection_reason(raised.value) == "the key file cannot be used"


def test_an_outage_is_not_taken_for_a_key_problem():
    with pytest.raises(ConnectionRefusedError) as raised:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9)")
    assert exception_rejection_reason(raised.value) is None


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("azure://dvcstore/p", ("AZURE_STORAGE_CONNECTION_STRING", "connection_string")),
        ("gs://bucket/p", ("GOOGLE_APPLICATION_CREDENTIALS", "credentialpath")),
        ("ssh://dvc@127.0.0.1:2222/srv", ("keyfile",)),
        ("webdav://127.0.0.1:8080/dav", ("user", "password")),
    ],
)
def test_a_rejection_names_the_setting_to_fix(url, names):
    message = str(remote_rejected(f"DVC remote 'storage' ({url})", url, None, "HTTP 403"))
    assert "\n" not in message
    for name in names:
        assert name in message


@pytest.mark.parametrize(
    "text",
    [
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={PLANTED};BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;",
        f"BlobEndpoint=http://127.0.0.1:1/a;SharedAccessSignature=sv=2021-08-06&ss=b&sig={PLANTED}",
        f"azure://c/p?sv=2021-08-06&se=2030-01-01&sig={PLANTED}&sp=rl",
        f'connection_string = "DefaultEndpointsProtocol=http;AccountKey={PLANTED}"',
        f'{{"type": "service_account", "private_key": "{PLANTED}"}}',
        f"account_key: {PLANTED}",
    ],
)
def test_secret_fields_are_redacted(text):
    shown = redact(text)
    assert PLANTED not in shown
    assert "***" in shown


def test_the_endpoint_of_a_redacted_connection_string_stays_readable():
    text = f"AccountName=devstoreaccount1;AccountKey={DEV_KEY};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    shown = redact(text)
    assert DEV_KEY not in shown
    assert "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1" in shown
    assert "AccountName=devstoreaccount1" in shown


def test_the_key_in_the_connection_string_variable_is_redacted_wherever_it_shows(monkeypatch):
    """A library that prints the key alone (not as `AccountKey=`) still does not leak it."""
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        f"DefaultEndpointsProtocol=http;AccountName=a;AccountKey={PLANTED};BlobEndpoint=http://127.0.0.1:1/a;",
    )
    assert redact(f"signing with {PLANTED} failed") == "signing with *** failed"


@pytest.mark.parametrize(
    "text",
    ["KeyError: 'refresh_token'", "the key: value of metrics.r2_score", "signal 15 received", "design = sig"],
)
def test_ordinary_words_are_not_redacted(text):
    assert redact(text) == text


def _raised_in(filename: str, statement: str) -> BaseException:
    """The exception `statement` raises when run as code of `filename` (a library's module path)."""
    try:
        exec(compile(statement, filename, "exec"), {})
    except BaseException as error:
        return error
    raise AssertionError("nothing raised")


@pytest.mark.parametrize(
    "statement",
    [
        "raise ConnectionError('Connection refused')",
        "raise TimeoutError('timed out')",
        "class TransportError(Exception): pass\nraise TransportError('Failed to retrieve http://metadata/')",
        "class RefreshError(Exception): pass\nraise RefreshError('500 Internal Server Error')",
    ],
)
@pytest.mark.parametrize(
    "module", ["google/auth/transport/requests.py", "google/oauth2/service_account.py", "gcsfs/credentials.py"]
)
def test_an_outage_inside_googles_libraries_is_not_a_key_problem(statement, module):
    """A token refresh that cannot reach Google (refused, timed out, 5xx) is an outage to retry, not
    exit 2, whichever of Google's modules it passed through."""
    error = _raised_in(f"/venv/site-packages/{module}", statement)
    assert exception_rejection_reason(error) is None


def test_a_malformed_key_raised_where_google_loads_it_is_a_key_problem():
    error = _raised_in("/venv/site-packages/google/oauth2/service_account.py", "raise KeyError('client_email')")
    assert exception_rejection_reason(error)


PEM = (
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC BKcwggSjAgEAAoIBAQC7\n"
    "k3Fq9 planted body\n-----END PRIVATE KEY-----\n"
)


@pytest.mark.parametrize("shown", [PEM, json.dumps({"private_key": PEM}), PEM.replace("\n", "\\n")])
def test_a_private_key_pasted_whole_is_redacted(shown):
    text = redact(f"error: GOOGLE_APPLICATION_CREDENTIALS was {shown} (not a path)")
    assert "MIIEv" not in text
    assert "planted body" not in text
    assert "not a path" in text


def test_a_key_json_in_google_application_credentials_is_never_shown(monkeypatch):
    """The common CI slip: the secret's JSON in the variable that wants its file's path."""
    from ci_helpers.adapters.remote_types import RemoteSettings

    key = json.dumps({"type": "service_account", "private_key_id": "abc123planted", "private_key": PEM})
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", key)
    why = RemoteSettings("storage", "gs://bucket/p").unusable_key_file()
    assert why is not None
    assert "GOOGLE_APPLICATION_CREDENTIALS" in why
    assert "abc123planted" not in why
    assert "MIIEv" not in why
    assert "abc123planted" not in redact(f"echo of the variable: {key}")
