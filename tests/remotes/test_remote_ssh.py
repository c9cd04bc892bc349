"""The remote contract on an SSH remote: a private OpenSSH sshd on 127.0.0.1 (key auth only)."""

from __future__ import annotations

import pytest

from tests.remotes.contract import RemoteContract, RemoteKind
from tests.remotes.kinds import ssh_kind

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def kind(ssh_server, tmp_path_factory) -> RemoteKind:
    return ssh_kind(ssh_server, tmp_path_factory.mktemp("ssh-stores"))


class TestSshRemote(RemoteContract):
    pass
