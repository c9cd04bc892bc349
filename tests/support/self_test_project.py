"""Servers and example project for the repository's own self-test workflow (see self-test.yml)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.project import Project, build_template
from tests.support.servers import FAKE_AWS, MlflowServer, free_port, s3_client


def main() -> None:
    os.environ.update(FAKE_AWS)
    os.environ.update(
        {
            "DVC_NO_ANALYTICS": "1",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "GIT_AUTHOR_NAME": "Self Test",
            "GIT_AUTHOR_EMAIL": "self-test@example.invalid",
            "GIT_COMMITTER_NAME": "Self Test",
            "GIT_COMMITTER_EMAIL": "self-test@example.invalid",
        }
    )
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    base = Path(tempfile.mkdtemp(prefix="mlops-self-test-"))
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=(base / "moto.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    for _ in range(100):
        try:
            s3_client(endpoint).list_buckets()
            break
        except Exception:
            time.sleep(0.2)
    for bucket in ("template-bucket", "mlflow-artifacts"):
        s3_client(endpoint).create_bucket(Bucket=bucket)
    mlflow = MlflowServer(base, endpoint, "mlflow-artifacts")  # left running for the job's next steps
    (base / "template").mkdir()
    build_template(base / "template", endpoint, "template-bucket", base / "train.db")
    mlflow.wait_ready()
    project = Project.copy_of(base / "template", base / "project", endpoint, "template-bucket")
    outputs = {
        "good": project.checkout("pr-better"),
        "bad": project.checkout("pr-worse"),
        "main": project.checkout("main"),
        "tracking-uri": mlflow.url,
    }
    with open(os.environ.get("GITHUB_OUTPUT", "/dev/stdout"), "a") as handle:
        for key, value in outputs.items():
            handle.write(f"{key}={value}\n")


if __name__ == "__main__":
    main()
