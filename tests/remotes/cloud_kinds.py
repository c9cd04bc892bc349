"""The RemoteKinds of the cloud emulators (Azure Blob on Azurite, GCS on gcp-storage-emulator), for
the test modules and bench/bench_remotes.py alike."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from tests.remotes._disk import stopped
from tests.remotes.contract import RemoteKind
from tests.support.cloud_emulators import AZURITE_KEY, GCSFS_PLAIN, AzuriteServer, GcsEmulator

# An AccountKey Azurite rejects (its signature check fails): it must print nowhere either.
AZURE_WRONG_KEY = "UExBTlRFRC13cm9uZy1henVyZS1rZXktNzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3"
GCS_PLANTED = "PLANTED-gcs-key-8181"


def _md5s(names) -> set[str]:
    """DVC 3 object names (<prefix>/files/md5/ab/cdef...) -> abcdef... (`.dir` kept)."""
    found = set()
    for name in names:
        parts = name.split("/")
        if len(parts) >= 4 and parts[-4:-2] == ["files", "md5"]:
            found.add(parts[-2] + parts[-1])
    return found


def azure_kind(server: AzuriteServer) -> RemoteKind:
    """A store is a container (created on first use), the remote its `dvc` folder; the working
    AccountKey (Azurite's development key) is the planted secret: it is in every config.local."""

    def url(store: str) -> str:
        from azure.core.exceptions import ResourceExistsError

        with contextlib.suppress(ResourceExistsError):
            server.service().create_container(store)
        return f"azure://{store}/dvc"

    def stored(store: str) -> set[str]:
        return _md5s(blob.name for blob in server.service().get_container_client(store).list_blobs())

    def copy(source: str, target: str) -> None:
        service = server.service()
        service.create_container(target)
        source_client, target_client = service.get_container_client(source), service.get_container_client(target)
        for blob in source_client.list_blobs():
            data = source_client.download_blob(blob.name).readall()
            target_client.upload_blob(blob.name, data)

    return RemoteKind(
        name="azure",
        extra="azure",
        url=url,
        credentials=lambda: {"connection_string": server.connection_string()},
        wrong_credentials=lambda: {"connection_string": server.connection_string(AZURE_WRONG_KEY)},
        expected_fix_words=("AZURE_STORAGE_CONNECTION_STRING", "connection_string"),
        planted_secret=AZURITE_KEY,
        stored_objects=stored,
        copy_store=copy,
        server_down=lambda: stopped(server),
        endpoint_words=(f"127.0.0.1:{server.port}",),
    )


def gcs_key_file(folder: Path) -> Path:
    """A service-account key file google-auth cannot use (no client_email, no token_uri): the
    emulator checks no credentials, so a rejection here is the client's own, before any request."""
    path = folder / "gcs-key.json"
    path.write_text(json.dumps({"type": "service_account", "private_key_id": GCS_PLANTED, "private_key": "x"}))
    return path


def gcs_kind(server: GcsEmulator, keys: Path) -> RemoteKind:
    """A store is a bucket (created on first use), the remote its `dvc` folder; anonymous login
    (the emulator takes any), with a planted secret in the endpoint URL's userinfo."""
    endpoint = f"http://ci:{GCS_PLANTED}@127.0.0.1:{server.port}"

    def url(store: str) -> str:
        import urllib.error

        try:
            server.create_bucket(store)
        except urllib.error.HTTPError as error:
            if error.code != 409:  # already there
                raise
        return f"gs://{store}/dvc"

    return RemoteKind(
        name="gs",
        extra="gs",
        url=url,
        credentials=lambda: {"endpointurl": endpoint, "allow_anonymous_login": "true"},
        wrong_credentials=lambda: {"endpointurl": endpoint, "credentialpath": str(gcs_key_file(keys))},
        expected_fix_words=("GOOGLE_APPLICATION_CREDENTIALS", "credentialpath"),
        planted_secret=GCS_PLANTED,
        stored_objects=lambda store: _md5s(server.object_names(store)),
        copy_store=server.copy_bucket,
        server_down=lambda: stopped(server),
        endpoint_words=(f"127.0.0.1:{server.port}",),
        raw_dvc_env=dict(GCSFS_PLAIN),  # ci-helpers sets it for an endpointurl (remote_types)
    )
