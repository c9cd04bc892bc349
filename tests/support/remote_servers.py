"""Real DVC remote servers on 127.0.0.1 for the remote matrix (tests/remotes): a private OpenSSH
sshd (key auth only) and a wsgidav WebDAV server (basic auth). Each is a child process the test
session starts once; `stop()` ends it and `start()` brings it back on the same port (the
"server down" cases). Nothing listens outside loopback.

The WebDAV server is wsgidav's app under gunicorn (threads): the venv has no cheroot, and
wsgiref cannot read the chunked request bodies DVC's uploads send (they hang until the timeout).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .servers import restartable_port

_ROOT = Path(__file__).resolve().parents[2]
SSHD = "/usr/sbin/sshd"
SSH_USER = "root"  # the suite runs as root; sshd logs in as an existing user
WEBDAV_USER = "ci-dav"


def _wait_port(port: int, process: subprocess.Popen, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before it listened")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s")


@dataclass
class _Child:
    """A server child process on a fixed loopback port, stoppable and restartable."""

    port: int
    log: Path
    process: subprocess.Popen | None = field(default=None, init=False)

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return {}

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.environment()},
            )
        _wait_port(self.port, self.process, type(self).__name__)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


@dataclass
class SshServer(_Child):
    """sshd on 127.0.0.1:port, its config, host key and authorized_keys under `base`.

    `keyfile` is the private key it accepts (for user root); `wrong_keyfile` one it does not.
    """

    base: Path = Path()

    def __post_init__(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.host_key = self.base / "ssh_host_ed25519_key"
        self.keyfile = self.base / "client_key"
        self.wrong_keyfile = self.base / "wrong_client_key"
        for key in (self.host_key, self.keyfile, self.wrong_keyfile):
            if not key.exists():
                subprocess.run(
                    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, capture_output=True
                )
        authorized = self.base / "authorized_keys"
        authorized.write_text(Path(f"{self.keyfile}.pub").read_text())
        authorized.chmod(0o600)
        self.config = self.base / "sshd_config"
        self.config.write_text(
            "\n".join(
                [
                    f"ListenAddress 127.0.0.1:{self.port}",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.base / 'sshd.pid'}",
                    f"AuthorizedKeysFile {authorized}",
                    "StrictModes no",
                    "UsePAM no",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "Subsystem sftp internal-sftp",
                    "MaxSessions 64",
                    "MaxStartups 64:30:128",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )
        # privilege separation wants this folder (Debian creates it at boot, a container may not)
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [SSHD, "-D", "-e", "-f", str(self.config)]

    def url(self, path: str, userinfo: str = SSH_USER) -> str:
        return f"ssh://{userinfo}@127.0.0.1:{self.port}{path}"


@dataclass
class WebdavServer(_Child):
    """wsgidav serving folder `root` at http://127.0.0.1:port/ to WEBDAV_USER / `password` (basic auth)."""

    root: Path = Path()
    password: str = ""

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            "1",
            "--threads",
            "16",
            "--timeout",
            "120",
            "--log-level",
            "warning",
            "tests.support.remote_servers:webdav_app()",
        ]

    def environment(self) -> dict[str, str]:
        return {
            "MLOPS_TEST_DAV_ROOT": str(self.root),
            "MLOPS_TEST_DAV_USER": WEBDAV_USER,
            "MLOPS_TEST_DAV_PASSWORD": self.password,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH", "")])),
        }

    def url(self, path: str) -> str:
        return f"webdav://127.0.0.1:{self.port}{path}"


def start_sshd(base: Path) -> SshServer:
    if not Path(SSHD).is_file() or not shutil.which("ssh-keygen"):
        raise RuntimeError(f"{SSHD} or ssh-keygen is missing (Debian's openssh-server)")
    server = SshServer(restartable_port(), base / "sshd.log", base=base)
    server.start()
    return server


def start_webdav(base: Path, password: str) -> WebdavServer:
    server = WebdavServer(restartable_port(), base / "wsgidav.log", root=base / "share", password=password)
    server.start()
    return server


def webdav_app():
    """wsgidav's app for gunicorn (`tests.support.remote_servers:webdav_app()`), from the
    MLOPS_TEST_DAV_* variables WebdavServer sets."""
    from wsgidav.wsgidav_app import WsgiDAVApp

    return WsgiDAVApp(
        {
            "provider_mapping": {"/": os.environ["MLOPS_TEST_DAV_ROOT"]},
            "http_authenticator": {"accept_basic": True, "accept_digest": False, "default_to_digest": False},
            "simple_dc": {
                "user_mapping": {
                    "*": {os.environ["MLOPS_TEST_DAV_USER"]: {"password": os.environ["MLOPS_TEST_DAV_PASSWORD"]}}
                }
            },
            "verbose": 1,
            "logging": {"enable_loggers": []},
            "dir_browser": {"enable": False},
            "lock_storage": True,
        }
    )
