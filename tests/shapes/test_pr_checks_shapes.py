"""pr-validate's push check on the shapes, from a fresh CI clone: it sees every file of a directory out."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.support.run import ci_helpers
from tests.support.servers import s3_client

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("name", "directory"),
    [("dir_out", "models"), ("get_started", "eval"), ("get_started", "data/features")],
)
def test_a_directory_out_with_one_file_missing_from_the_remote_is_reported_unpushed(shape_project, name, directory):
    project = shape_project(name)
    checkout = project.clone("ci")
    lock = yaml.safe_load((project.project_dir(checkout) / "dvc.lock").read_text())
    (dir_md5,) = [
        out["md5"]
        for entry in lock["stages"].values()
        for out in entry.get("outs", [])
        if out["path"].rstrip("/") == directory
    ]
    assert dir_md5.endswith(".dir")
    client = s3_client(project.endpoint)
    manifest_key = f"dvc/files/md5/{dir_md5[:2]}/{dir_md5[2:]}"
    listed = json.loads(client.get_object(Bucket=project.bucket, Key=manifest_key)["Body"].read())
    # one file of the directory is gone from the remote; its manifest is still there
    md5 = listed[0]["md5"]
    client.delete_object(Bucket=project.bucket, Key=f"dvc/files/md5/{md5[:2]}/{md5[2:]}")

    raw = project.dvc(checkout, "status", "--cloud", "--json")
    result = ci_helpers("check-remote", cwd=project.project_dir(checkout))

    assert raw.returncode == 0
    assert directory not in json.loads(raw.stdout or "{}")  # raw `dvc status -c` stops at the manifest
    assert result.code == 1, result.output
    assert f"{directory} is not on remote" in result.output
    assert "dvc push" in result.output
