"""Cloud object-store emulators on 127.0.0.1 for the remote matrix: Azurite (Azure Blob) and
gcp-storage-emulator (Google Cloud Storage). Each is a child process the test session starts once;
`stop()` ends it and `start()` brings it back on the same port with its data (the "server down"
cases): both keep their objects on disk, in the session's tmp folder.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .remote_servers import _Child
from .servers import restartable_port

ROOT = Path(__file__).resolve().parents[2]
# installed by scripts/setup-remote-servers.sh (npm, into the repo's .cache)
AZURITE = ROOT / ".cache" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's well-known development account: https://learn.microsoft.com/azure/storage/common/storage-use-azurite
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# gcsfs >= 2025 asks a gRPC control plane for each bucket's layout; an emulator has none, and each
# ask waits 60 s before gcsfs falls back to JSON. Off for any endpoint but Google's own.
GCSFS_PLAIN = {"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}


@dataclass
class AzuriteServer(_Child):
    """azurite-blob with its on-disk store under `location`, telemetry off, loopback only."""

    location: Path = Path()

    def command(self) -> list[str]:
        return [
            str(AZURITE),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(self.port),
            "--location",
            str(self.location),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",  # else it phones Microsoft
        ]

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    def connection_string(self, key: str = AZURITE_KEY) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};"
            f"BlobEndpoint={self.blob_endpoint};"
        )

    def service(self):
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string())


@dataclass
class GcsEmulator(_Child):
    """gcp-storage-emulator with its data under `data_dir`; it checks no credentials at all."""

    data_dir: Path = Path()

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gcp_storage_emulator",
            "--data-dir",
            str(self.data_dir),
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--quiet",
        ]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"):
        import urllib.request

        request = urllib.request.Request(f"{self.endpoint}{path}", data=body, method=method)
        request.add_header("Content-Type", content_type)
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def create_bucket(self, bucket: str) -> None:
        import json

        self._call("POST", "/storage/v1/b?project=test", json.dumps({"name": bucket}).encode())

    def object_names(self, bucket: str) -> list[str]:
        """Every object's name in `bucket`, through the emulator's JSON API."""
        import json
        import urllib.parse

        names, token = [], ""
        while True:
            query = f"?pageToken={urllib.parse.quote(token)}" if token else ""
            page = json.loads(self._call("GET", f"/storage/v1/b/{bucket}/o{query}"))
            names += [item["name"] for item in page.get("items", [])]
            token = page.get("nextPageToken") or ""
            if not token:
                return names

    def copy_bucket(self, source: str, target: str) -> None:
        import urllib.parse

        self.create_bucket(target)
        for name in self.object_names(source):
            quoted = urllib.parse.quote(name, safe="")
            body = self._call("GET", f"/download/storage/v1/b/{source}/o/{quoted}?alt=media")
            self._call(
                "POST",
                f"/upload/storage/v1/b/{target}/o?uploadType=media&name={quoted}",
                body,
                "application/octet-stream",
            )


def start_azurite(base: Path) -> AzuriteServer:
    """Azurite on a free loopback port; skips (with the reason) when set-up did not install it."""
    import pytest

    if not AZURITE.is_file():
        pytest.skip(f"Azurite is not installed at {AZURITE} (scripts/setup-remote-servers.sh installs it)")
    (base / "blobs").mkdir(parents=True, exist_ok=True)
    server = AzuriteServer(restartable_port(), base / "azurite.log", location=base / "blobs")
    server.start()
    return server


def start_gcs_emulator(base: Path) -> GcsEmulator:
    (base / "data").mkdir(parents=True, exist_ok=True)
    server = GcsEmulator(restartable_port(), base / "gcs-emulator.log", data_dir=base / "data")
    server.start()
    return server
