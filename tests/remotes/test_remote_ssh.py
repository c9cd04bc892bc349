"""The remote contract on an SSH remote: a private OpenSSH sshd on 127.0.0.1 (key auth only)."""

from __future__ import annotations

import pytest

from tests.remotes._disk import copy_folder, stopped, stored_md5s
from tests.remotes.contract import RemoteContract, RemoteKind
from tests.support.remote_servers import SSH_USER

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PLANTED = "PLANTED-ssh-pass-4242"


@pytest.fixture(scope="module")
def kind(ssh_server, tmp_path_factory) -> RemoteKind:
    stores = tmp_path_factory.mktemp("ssh-stores")
    return RemoteKind(
        name="ssh",
        extra="ssh",
        # a password in the URL (and in `password`) that sshd never asks for: it must print nowhere
        url=lambda store: ssh_server.url(str(stores / store), userinfo=f"{SSH_USER}:{PLANTED}"),
        credentials=lambda: {"keyfile": str(ssh_server.keyfile), "password": PLANTED},
        wrong_credentials=lambda: {"keyfile": str(ssh_server.wrong_keyfile), "password": PLANTED},
        expected_fix_words=("dvc remote modify --local storage keyfile", "ssh-agent", f"user {SSH_USER}"),
        planted_secret=PLANTED,
        stored_objects=lambda store: stored_md5s(stores / store),
        copy_store=lambda source, target: copy_folder(stores / source, stores / target),
        server_down=lambda: stopped(ssh_server),
        endpoint_words=(f"127.0.0.1:{ssh_server.port}",),
    )


class TestSshRemote(RemoteContract):
    pass
