"""The RemoteKinds of the servers this machine runs (SSH, WebDAV), for the test modules and
bench/bench_remotes.py alike."""

from __future__ import annotations

from pathlib import Path

from tests.remotes._disk import copy_folder, stopped, stored_md5s
from tests.remotes.contract import RemoteKind
from tests.support.remote_servers import SSH_USER, WEBDAV_USER, SshServer, WebdavServer

SSH_PLANTED = "PLANTED-ssh-pass-4242"


def ssh_kind(server: SshServer, stores: Path) -> RemoteKind:
    """Stores are folders under `stores`, reached over SFTP as root with the server's key."""
    return RemoteKind(
        name="ssh",
        extra="ssh",
        # a password in the URL (and in `password`) that sshd never takes: it must print nowhere
        url=lambda store: server.url(str(stores / store), userinfo=f"{SSH_USER}:{SSH_PLANTED}"),
        credentials=lambda: {"keyfile": str(server.keyfile), "password": SSH_PLANTED},
        wrong_credentials=lambda: {"keyfile": str(server.wrong_keyfile), "password": SSH_PLANTED},
        expected_fix_words=("dvc remote modify --local storage keyfile", "ssh-agent", f"user {SSH_USER}"),
        planted_secret=SSH_PLANTED,
        stored_objects=lambda store: stored_md5s(stores / store),
        copy_store=lambda source, target: copy_folder(stores / source, stores / target),
        server_down=lambda: stopped(server),
        endpoint_words=(f"127.0.0.1:{server.port}",),
    )


def webdav_kind(server: WebdavServer) -> RemoteKind:
    """Stores are folders of the server's share; its password is the planted secret."""
    share = server.root

    def url(store: str) -> str:
        (share / store).mkdir(exist_ok=True)  # a WebDAV remote's folder must exist: DVC creates what is under it
        return server.url(f"/{store}")

    return RemoteKind(
        name="webdav",
        extra="webdav",
        url=url,
        credentials=lambda: {"user": WEBDAV_USER, "password": server.password},
        wrong_credentials=lambda: {"user": WEBDAV_USER, "password": "not-the-password"},
        expected_fix_words=("dvc remote modify --local storage password", "user"),
        planted_secret=server.password,
        stored_objects=lambda store: stored_md5s(share / store),
        copy_store=lambda source, target: copy_folder(share / source, share / target),
        server_down=lambda: stopped(server),
        endpoint_words=(f"127.0.0.1:{server.port}",),
    )
