"""Is a failure a server rejecting the credentials (HTTP 401/403, S3 AccessDenied, git "Authentication
failed")? Such a failure is a configuration error (exit 2): retrying cannot fix it, so it never is.

The adapters (tracking, dvc, git) ask `rejection_reason` / `exception_rejection_reason` and raise the
ConfigError built here; the shared runner applies the rule (`run(..., rejected=...)`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..errors import ConfigError
from .redact import redact
from .remote_types import AZURE_SCHEMES, GS_SCHEMES, S3_SCHEMES, scheme_of

# (pattern, reason): the first that matches names the rejection. Specific codes before generic words.
_REJECTIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), reason)
    for pattern, reason in (
        # S3 and other AWS-signed stores
        (r"\bInvalidAccessKeyId\b", "InvalidAccessKeyId"),
        (r"\bSignatureDoesNotMatch\b", "SignatureDoesNotMatch"),
        (r"\bExpiredToken\b", "ExpiredToken"),
        (r"\bInvalidToken\b", "InvalidToken"),
        (r"\bAccessDenied\b|\bAccess Denied\b", "AccessDenied"),
        (r"\bAllAccessDisabled\b", "AllAccessDisabled"),
        (r"Unable to locate credentials|\bNoCredentialsError\b", "no credentials found"),
        # Azure Blob (Azure answers AuthenticationFailed, Azurite AuthorizationFailure, both with this sentence)
        (r"\bAuthenticationFailed\b", "AuthenticationFailed"),
        (r"\bAuthorizationFailure\b", "AuthorizationFailure"),
        (r"\bAuthorizationPermissionMismatch\b", "AuthorizationPermissionMismatch"),
        (r"\bInvalidAuthenticationInfo\b", "InvalidAuthenticationInfo"),
        (r"Server failed to authenticate the request", "AuthenticationFailed"),
        # dvc-azure, before any request: no account or connection string, or one it cannot parse
        (r"Authentication to Azure Blob Storage (?:requires|via)", "no usable Azure credentials"),
        (r"Connection string is either blank or malformed", "malformed connection string"),
        # Google Cloud Storage (google-auth, client side: the key file cannot be used)
        (r"\bDefaultCredentialsError\b", "unusable key file"),
        (r"\bRefreshError\b.*\binvalid_grant\b", "invalid_grant"),
        (r"Service account info was not in the expected format", "unusable key file"),
        # SSH: OpenSSH's client, then asyncssh's (DVC's SSH remote)
        (r"Permission denied \(publickey", "Permission denied (publickey)"),
        (r"Permission denied for user \S+ on host", "Permission denied"),
        # WebDAV (webdav4's HTTPError)
        (r"\breceived (?P<code>401|403) \(", "HTTP {code}"),
        # git
        (r"could not read (?:Username|Password) for", "no credentials for the remote (the server asked for them)"),
        (r"Authentication failed for", "Authentication failed"),
        (r"HTTP Basic: Access denied", "Authentication failed"),
        (r"remote: Permission to \S+ denied", "permission denied"),
        (r"remote: Write access to repository not granted", "write access not granted"),
        (r"The requested URL returned error: (?P<code>401|403)\b", "HTTP {code}"),
        # HTTP (MLflow's client, requests, botocore)
        (r"error code (?P<code>401|403)\b", "HTTP {code}"),
        (r"\b(?P<code>401|403) Client Error\b", "HTTP {code}"),
        (r"\bHTTP(?: status| Error)?:? (?P<code>401|403)\b", "HTTP {code}"),
        (r"\b(?P<code>401) Unauthorized\b", "HTTP {code}"),
        (r"\b(?P<code>403) Forbidden\b", "HTTP {code}"),
        (r"An error occurred \((?P<code>401|403)\)", "HTTP {code}"),
        (r"\bUNAUTHENTICATED\b", "HTTP 401"),
        (r"\bPERMISSION_DENIED\b", "HTTP 403"),
        (r"^\s*(?:PermissionError:\s*)?Forbidden\s*$", "HTTP 403"),
    )
)

# MLflow's error codes for a refused request (MlflowException.error_code)
_MLFLOW_CODES = {"UNAUTHENTICATED": "HTTP 401", "CUSTOMER_UNAUTHORIZED": "HTTP 401", "PERMISSION_DENIED": "HTTP 403"}
# botocore ClientError codes for a refused request
_S3_CODES = (
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AllAccessDisabled",
)


def rejection_reason(text: str) -> str | None:
    """A short name for the rejection when `text` (a tool's output, an error message) says that a
    server refused the credentials ("HTTP 401", "AccessDenied", "Authentication failed"...), else None."""
    for line in text.splitlines() or [text]:
        for pattern, reason in _REJECTIONS:
            match = pattern.search(line)
            if match:
                return reason.format(**match.groupdict())
    return None


def exception_chain(error: BaseException) -> Iterator[BaseException]:
    """`error`, then what it was raised from or during, each once."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


# Where Google's client libraries load a key file: what fails in there (a missing or malformed file,
# a file of the wrong kind: JSONDecodeError, KeyError 'refresh_token'...) is the credentials setting,
# not the server, and retrying cannot fix it. Not their transport (token refreshes, the metadata
# server): a refused or timed-out request there is an outage.
_GCS_CREDENTIAL_CODE = re.compile(
    r"[/\\](?:gcsfs[/\\]credentials\.py|google[/\\]auth[/\\](?:_default|_service_account_info)\.py|"
    r"google[/\\](?:oauth2|auth)[/\\](?:service_account|credentials|_credentials_base)\.py)"
)
# What a key file that cannot be used raises (JSONDecodeError is a ValueError); never a transport
# error or a refused refresh, which say nothing about the file.
_KEY_FILE_ERRORS = (KeyError, ValueError, TypeError, FileNotFoundError, IsADirectoryError)
_KEY_FILE_ERROR_NAMES = ("DefaultCredentialsError", "MalformedError")


def _raised_loading_gcs_credentials(error: BaseException) -> bool:
    if not (isinstance(error, _KEY_FILE_ERRORS) or type(error).__name__ in _KEY_FILE_ERROR_NAMES):
        return False
    traceback = error.__traceback__
    while traceback is not None:
        if _GCS_CREDENTIAL_CODE.search(traceback.tb_frame.f_code.co_filename):
            return True
        traceback = traceback.tb_next
    return False


def _coded_reason(link: BaseException) -> str | None:
    """The rejection an exception's error code says: MLflow's error codes, botocore's codes and statuses."""
    code = getattr(link, "error_code", None)
    if isinstance(code, str) and code in _MLFLOW_CODES:
        return _MLFLOW_CODES[code]
    response = getattr(link, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        s3_code = str((response.get("Error") or {}).get("Code") or "")
        if s3_code in _S3_CODES:
            return s3_code
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        if status in (401, 403):
            return f"HTTP {status}"
    return None


def exception_rejection_reason(error: BaseException) -> str | None:
    """`rejection_reason` for an exception and those it was raised from: MLflow's error codes,
    botocore's error codes and HTTP statuses, a failure while loading Google credentials, the
    messages' text (Azure's error codes among them), else the HTTP status of requests', httpx's or
    azure-core's response."""
    for link in exception_chain(error):
        if _raised_loading_gcs_credentials(link):
            return "the key file cannot be used"
        reason = _coded_reason(link) or rejection_reason(f"{type(link).__name__}: {link}")
        if reason:
            return reason
        status = getattr(getattr(link, "response", None), "status_code", None)
        if status in (401, 403):
            return f"HTTP {status}"
    return None


def mlflow_rejected(tracking_uri: str, reason: str) -> ConfigError:
    """The MLflow server refused the credentials: what to set."""
    return ConfigError(
        f"MLflow tracking server {redact(tracking_uri)} rejected the credentials ({reason}); "
        "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)"
    )


def remote_rejected(
    where: str, url: str, endpoint_url: str | None, reason: str, remote: str = "NAME", user: str | None = None
) -> ConfigError:
    """A DVC remote (`where` describes it, `url` is its URL, `remote` its name, `user` the login of an
    SSH or WebDAV one) refused the credentials: what to set."""
    scheme = scheme_of(url)
    modify = f"dvc remote modify --local {remote}"
    if scheme in S3_SCHEMES:
        target = endpoint_url or f"bucket {url.partition('://')[2].partition('/')[0]}"
        fix = f"set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) for {target}"
    elif scheme in GS_SCHEMES:
        fix = (
            f"set GOOGLE_APPLICATION_CREDENTIALS (or `{modify} credentialpath PATH`) "
            "to a service-account key file allowed on that bucket"
        )
    elif scheme in AZURE_SCHEMES:
        fix = (
            f"set AZURE_STORAGE_CONNECTION_STRING (or `{modify} connection_string ...`) "
            "to one whose AccountKey or SAS is valid for that container"
        )
    elif scheme == "ssh":
        login = f"user {user}" if user else "no user set: the local login name is used"
        fix = (
            f"give it a key the server accepts for that user: `{modify} keyfile PATH` (or load the key into "
            f"`ssh-agent`), and check the login ({login}; `{modify} user NAME`)"
        )
    elif scheme in ("webdav", "webdavs", "http", "https"):
        fix = f"set the user and password the server accepts: `{modify} user NAME` and `{modify} password ...` (from a secret)"
    else:
        fix = f"set the remote's credentials (`{modify} user/password`, or its usual variables)"
    return ConfigError(redact(f"{where} rejected the credentials ({reason}); {fix}"))


def git_rejected(where: str, reason: str) -> ConfigError:
    """A git remote (`where` names it: "git remote 'origin' (URL)") refused the credentials: what to set."""
    return ConfigError(
        redact(
            f"{where} rejected the credentials ({reason}); "
            "set a token with contents: write (GITHUB_TOKEN / the credential in the remote URL)"
        )
    )
