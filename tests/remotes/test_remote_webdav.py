"""The remote contract on a WebDAV remote: wsgidav (under gunicorn) on 127.0.0.1 with basic auth."""

from __future__ import annotations

import pytest

from tests.remotes.contract import RemoteContract, RemoteKind
from tests.remotes.kinds import webdav_kind

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def kind(webdav_server) -> RemoteKind:
    return webdav_kind(webdav_server)


class TestWebdavRemote(RemoteContract):
    pass
