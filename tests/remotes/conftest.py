"""The remote matrix's servers, one of each per test session, on 127.0.0.1 only."""

from __future__ import annotations

import pytest

from tests.support.remote_servers import start_sshd, start_webdav

WEBDAV_PASSWORD = "PLANTED-dav-pass-5150"  # the real password: it must print nowhere


@pytest.fixture(scope="session")
def ssh_server(tmp_path_factory):
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def webdav_server(tmp_path_factory):
    server = start_webdav(tmp_path_factory.mktemp("wsgidav"), WEBDAV_PASSWORD)
    yield server
    server.stop()
