"""The remote contract on a WebDAV remote: wsgidav on 127.0.0.1 with basic auth."""

from __future__ import annotations

import pytest

from tests.remotes._disk import copy_folder, stopped, stored_md5s
from tests.remotes.conftest import WEBDAV_PASSWORD
from tests.remotes.contract import RemoteContract, RemoteKind
from tests.support.remote_servers import WEBDAV_USER

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def kind(webdav_server) -> RemoteKind:
    share = webdav_server.root

    def url(store: str) -> str:
        (share / store).mkdir(exist_ok=True)  # a WebDAV remote's folder must exist: DVC creates what is under it
        return webdav_server.url(f"/{store}")

    return RemoteKind(
        name="webdav",
        extra="webdav",
        url=url,
        credentials=lambda: {"user": WEBDAV_USER, "password": WEBDAV_PASSWORD},
        wrong_credentials=lambda: {"user": WEBDAV_USER, "password": "not-the-password"},
        expected_fix_words=("dvc remote modify --local storage password", "user"),
        planted_secret=WEBDAV_PASSWORD,
        stored_objects=lambda store: stored_md5s(share / store),
        copy_store=lambda source, target: copy_folder(share / source, share / target),
        server_down=lambda: stopped(webdav_server),
        endpoint_words=(f"127.0.0.1:{webdav_server.port}",),
    )


class TestWebdavRemote(RemoteContract):
    pass
