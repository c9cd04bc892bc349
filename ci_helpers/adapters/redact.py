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
)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
MASK = "***"


def secret_values() -> list[str]:
    """The secrets this process knows of, longest first so that no part leaks."""
    values = [os.environ.get(name, "") for name in SECRET_ENV_VARS]
    return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)


def redact(text: str) -> str:
    """Remove credentials in URLs and the values of known secret variables."""
    text = _URL_USERINFO.sub(lambda m: m.group("scheme") + MASK + "@", text)
    for value in secret_values():
        text = text.replace(value, MASK)
    return text
