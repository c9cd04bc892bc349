"""What the hosted CI services' REST clients share (github_api, gitlab_api): one error class, the
check of the API's base URL, a session no proxy or .netrc setting can swap the token of, and one
request that follows no redirect and never names the token."""

from __future__ import annotations

import os
from collections.abc import Mapping

import requests


class HostedAPIError(Exception):
    """Raised when a hosted service's API answered with an error, or never answered (status None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def transient(self) -> bool:
        """Worth retrying: no answer, a rate limit or a server error."""
        return self.status is None or self.status == 429 or self.status >= 500

    @property
    def forbidden(self) -> bool:
        """The token may not do this: rejected (401), without the permission or scope (403), or not
        allowed to see the repository or project (404 is how both services answer that)."""
        return self.status in (401, 403, 404)


def api_url_from(variable: str, error: type[HostedAPIError], default: str = "") -> str:
    """$variable (else `default`) without its trailing slash; only http(s) URLs without credentials."""
    from urllib.parse import urlsplit

    url = (os.environ.get(variable) or default).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise error(f"{variable} {url!r} is not an http(s) URL")
    if "@" in parts.netloc:
        raise error(f"{variable} must not carry credentials")
    return url


def token_session(api_url: str, headers: Mapping[str, str]) -> requests.Session:
    """A session sending `headers` (the token among them) to `api_url`'s proxies as the environment
    sets them, with no .netrc that could replace the token."""
    session = requests.Session()
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(api_url))
    session.headers.update({"User-Agent": "mlops-actions-ci-helpers", **headers})
    return session


def send(
    session: requests.Session,
    method: str,
    url: str,
    base: str,
    path: str,
    error: type[HostedAPIError],
    timeout: float,
    message_keys: tuple[str, ...] = ("message",),
    **body,
) -> requests.Response:
    """One request, no redirect followed. A failure is `error`: no answer names the API's `base`
    URL, an error answer the request's `path`, the status and the service's own message; neither
    names the token."""
    try:
        response = session.request(method, url, timeout=timeout, allow_redirects=False, **body)
    except requests.RequestException as failure:
        raise error(f"{method} {base} got no answer ({type(failure).__name__})") from None
    if response.status_code >= 300:
        raise error(
            f"{method} {path} answered {response.status_code}: {_message(response, message_keys)}", response.status_code
        )
    return response


def _message(response: requests.Response, keys: tuple[str, ...]) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.reason or "no message"
    message = next((data.get(key) for key in keys if data.get(key)), None) if isinstance(data, dict) else None
    return " ".join(str(message or response.reason or "no message").split())[:200]
