"""Real servers on 127.0.0.1 for the test suite: a moto S3 server and an `mlflow server`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_REFUSING: list[socket.socket] = []


def refused_port() -> int:
    """A port on 127.0.0.1 where connections are refused for as long as this test process lives: a
    socket stays bound to it and never listens. A port found free and let go (free_port) is not that:
    a server of this process, or of another xdist worker, may take it meanwhile."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    _REFUSING.append(sock)
    return sock.getsockname()[1]


def restartable_port() -> int:
    """A port for a server that a test stops and starts again: like refused_port, but the socket
    holding it has SO_REUSEADDR, so a server binding it with SO_REUSEADDR too (werkzeug's, moto's)
    still can. While that server is down, connections are refused and no other server is handed
    the port (bind to port 0 skips a port something is bound to)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    _REFUSING.append(sock)
    return sock.getsockname()[1]


def start_moto(port: int | None = None):
    from moto.server import ThreadedMotoServer

    port = port or free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


def s3_client(endpoint: str):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=FAKE_AWS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
    )


def copy_bucket(endpoint_from: str, source: str, endpoint_to: str, target: str) -> None:
    """Copy every object of one bucket into a new bucket (maybe on another server)."""
    src, dst = s3_client(endpoint_from), s3_client(endpoint_to)
    dst.create_bucket(Bucket=target)
    for page in src.get_paginator("list_objects_v2").paginate(Bucket=source):
        for item in page.get("Contents", []):
            body = src.get_object(Bucket=source, Key=item["Key"])["Body"].read()
            dst.put_object(Bucket=target, Key=item["Key"], Body=body)


class MlflowServer:
    """`mlflow server` with a sqlite backend and proxied artifacts on the moto bucket; `mlflow` is
    the executable to start (another venv's, for another MLflow version), else the one on PATH."""

    def __init__(self, workdir: Path, s3_endpoint: str, bucket: str, mlflow: str | None = None) -> None:
        self.workdir, self.s3_endpoint, self.bucket = workdir, s3_endpoint, bucket
        self.mlflow = mlflow or shutil.which("mlflow") or "mlflow"
        self.log = workdir / "mlflow-server.log"
        self._launch()

    def _launch(self) -> None:
        # The port is free when picked, but the server binds it seconds later: meanwhile another
        # server (another xdist worker's) may take it, and wait_ready launches again on a new one.
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir, bucket = self.workdir, self.bucket
        env = {
            **os.environ,
            **FAKE_AWS,
            "MLFLOW_S3_ENDPOINT_URL": self.s3_endpoint,
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        self.process = subprocess.Popen(
            [
                self.mlflow,
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--backend-store-uri",
                f"sqlite:///{workdir / 'mlflow-server.db'}",
                "--artifacts-destination",
                f"s3://{bucket}/mlflow",
                "--workers",
                "1",
            ],
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        launches = 1
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.log.read_text()
                if "address already in use" in log.lower() and launches < 3:
                    launches += 1
                    self._launch()
                    continue
                raise RuntimeError(f"mlflow server exited: {log[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"mlflow server not ready after {timeout}s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        import signal

        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)
