"""The remote contract on a Google Cloud Storage remote: gcp-storage-emulator on 127.0.0.1, DVC's GS
remote with `endpointurl` and anonymous login (nothing asks Google's metadata or OAuth servers).

What the emulator cannot do: it checks no credentials, so no server-side rejection (401/403) can be
shown here. The rejected-credentials case is the client's own: a `credentialpath` key file that
google-auth cannot use, refused before any request, exit 2 naming GOOGLE_APPLICATION_CREDENTIALS
and `credentialpath`. Google's own 401/403 texts are covered in tests/unit/test_remote_rejections.py.
"""

from __future__ import annotations

import pytest

from tests.remotes.cloud_kinds import GCS_PLANTED, gcs_key_file, gcs_kind
from tests.remotes.contract import RemoteContract, RemoteKind
from tests.support.cloud_emulators import start_gcs_emulator

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory):
    server = start_gcs_emulator(tmp_path_factory.mktemp("gcs-emulator"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def kind(gcs_emulator, tmp_path_factory) -> RemoteKind:
    return gcs_kind(gcs_emulator, tmp_path_factory.mktemp("gcs-keys"))


class TestGcsRemote(RemoteContract):
    def test_a_malformed_key_in_google_application_credentials_is_exit_2(self, remote_project, tmp_path):
        """The key file named by the variable (no `credentialpath`), unusable: exit 2 naming it."""
        checkout = remote_project.checkout(
            "pr-better", settings={"endpointurl": remote_project.kind.credentials()["endpointurl"]}
        )
        env = {"GOOGLE_APPLICATION_CREDENTIALS": str(gcs_key_file(tmp_path))}

        result = remote_project.run("check-remote", cwd=checkout, env=env)

        assert result.code == 2, result.output
        assert "GOOGLE_APPLICATION_CREDENTIALS" in result.output.strip().splitlines()[-1]
        assert GCS_PLANTED not in result.output

    def test_an_absent_key_file_is_exit_2_not_an_outage(self, remote_project):
        """gcsfs takes a `credentialpath` that is no file for a raw token and asks Google's tokeninfo
        endpoint about it. ci-helpers checks the file first: exit 2 at once naming the setting, not an
        outage (exit 3 after retries), and no request to Google."""
        endpoint = remote_project.kind.credentials()["endpointurl"]
        checkout = remote_project.checkout(
            "pr-better", settings={"endpointurl": endpoint, "credentialpath": "/nonexistent/key.json"}
        )

        result = remote_project.run("check-remote", cwd=checkout)

        assert result.code == 2, result.output
        assert "credentialpath" in result.output.strip().splitlines()[-1]
        assert "googleapis.com" not in result.output
