"""The remote contract on an Azure Blob remote: Azurite on 127.0.0.1 with its development account,
the connection string set with `dvc remote modify --local` as CI writes it from a secret."""

from __future__ import annotations

import functools

import pytest

from tests.remotes import contract
from tests.remotes.cloud_kinds import azure_kind
from tests.remotes.contract import RemoteContract, RemoteKind
from tests.support.cloud_emulators import start_azurite
from tests.support.run import ci_helpers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# A down server is reported in seconds (ci-helpers probes the BlobEndpoint with a bounded TCP
# connect first); without that the Azure SDK's own retries (15 s, 18 s, 24 s for each request) hold
# a check for over 4 minutes (measured: 264 s). The timeout makes that a failure.
DOWN_TIMEOUT = 25


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    server = start_azurite(tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def kind(azurite) -> RemoteKind:
    return azure_kind(azurite)


class TestAzureRemote(RemoteContract):
    def test_a_server_that_is_down_is_exit_3_naming_the_endpoint_and_no_secret(self, remote_project, monkeypatch):
        monkeypatch.setattr(contract, "ci_helpers", functools.partial(ci_helpers, timeout=DOWN_TIMEOUT))
        super().test_a_server_that_is_down_is_exit_3_naming_the_endpoint_and_no_secret(remote_project)

    def test_the_planted_secret_is_printed_nowhere(self, remote_project, tmp_path, monkeypatch):
        monkeypatch.setattr(contract, "ci_helpers", functools.partial(ci_helpers, timeout=DOWN_TIMEOUT))
        super().test_the_planted_secret_is_printed_nowhere(remote_project, tmp_path)

    def test_the_account_key_is_printed_nowhere_when_it_works_or_is_rejected(self, remote_project, tmp_path):
        """The down-server half aside (above), the AccountKey of the connection string, working or
        wrong, reaches no stdout, stderr, job summary, step output or JSON report."""
        from tests.remotes.cloud_kinds import AZURE_WRONG_KEY
        from tests.support.run import github_env

        kind = remote_project.kind
        channels = {}
        for label, settings in (("works", None), ("rejected", kind.wrong_credentials())):
            checkout = remote_project.checkout("pr-better", settings=settings)
            gh = github_env(tmp_path / label, GITHUB_REF="refs/pull/5/merge", GITHUB_BASE_REF="main")
            report = tmp_path / f"{label}.json"
            result = remote_project.run("pr-validate", "--no-track", "--report-json", str(report), cwd=checkout, env=gh)
            assert result.code == (0 if label == "works" else 2), result.output
            channels |= {
                f"{label}: stdout": result.stdout,
                f"{label}: stderr": result.stderr,
                f"{label}: summary": (tmp_path / label / "summary").read_text(),
                f"{label}: outputs": (tmp_path / label / "output").read_text(),
                f"{label}: report": report.read_text() if report.exists() else "",
            }
        leaks = [name for name, text in channels.items() if kind.planted_secret in text or AZURE_WRONG_KEY in text]
        assert leaks == []

    def test_the_connection_string_variable_works_and_its_key_prints_nowhere(self, remote_project, azurite, tmp_path):
        """AZURE_STORAGE_CONNECTION_STRING instead of the remote's setting, as the docs offer."""
        checkout = remote_project.checkout("pr-unpushed", settings={})
        env = {"AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string()}

        result = remote_project.run("pr-validate", "--no-track", cwd=checkout, env=env)

        assert result.code == 1, result.output
        assert "data/extra is not on remote 'storage'" in result.output
        assert remote_project.kind.planted_secret not in result.output
