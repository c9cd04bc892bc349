"""A tiny HTTP reverse proxy on 127.0.0.1 that can play "the server went away" for some paths.

It stands between the MLflow client and the real `mlflow server`, so a test can make the registry
unreachable while tracking still works, as when a server dies in the middle of a build.

It also counts what passes through it (`exchanges`: method, path, status and body bytes of every
answer the upstream gave), so a test can say how many objects and bytes a client downloaded.

It can also play "the server rejects the credentials": with `reject` set, every request is answered
with that status and body (see `unauthorized`, `forbidden` and `s3_access_denied`), as a server
behind an authenticating gateway, or an S3 bucket whose policy refuses the key, would answer.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse


@dataclass(frozen=True)
class Rejection:
    """One canned answer to every request."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain"
    headers: tuple[tuple[str, str], ...] = ()


def unauthorized() -> Rejection:
    """HTTP 401, as MLflow's basic-auth app (or a gateway) answers a request without valid credentials."""
    return Rejection(
        401,
        b"You are not authenticated. Please provide valid credentials.",
        headers=(("WWW-Authenticate", 'Basic realm="mlflow"'),),
    )


def forbidden() -> Rejection:
    """HTTP 403: authenticated, but not allowed."""
    return Rejection(403, b"Permission denied.")


def s3_access_denied() -> Rejection:
    """S3's answer when the bucket policy or the key refuses the request."""
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message>'
        b"<RequestId>0F1E2D3C4B5A6978</RequestId><HostId>proxy</HostId></Error>"
    )
    return Rejection(403, body, "application/xml")


@dataclass(frozen=True)
class Exchange:
    """One request the upstream answered, as the client saw it."""

    method: str
    path: str  # with the query string
    status: int
    sent: int  # body bytes passed to the client (0 for HEAD)


class FlakyProxy:
    def __init__(
        self,
        upstream: str,
        fail_paths: tuple[str, ...] = (),
        reject: Rejection | None = None,
        slow: tuple[str, str, float] | None = None,
    ) -> None:
        self.upstream = urlparse(upstream)
        self.fail_paths = fail_paths
        self.reject = reject  # may be changed while the proxy runs
        # (method, path fragment, seconds): such requests wait before they are forwarded, so that a
        # test can signal a client in the middle of that step; may be changed while the proxy runs
        self.slow = slow
        self.slowed_requests: list[str] = []
        self._closing = threading.Event()  # a slowed request still held at the end is dropped
        self.failed_requests: list[str] = []
        self.rejected_requests: list[str] = []
        self.exchanges: list[Exchange] = []  # appended from the handler threads (list.append is atomic)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _reject(self, rejection: Rejection) -> None:
                proxy.rejected_requests.append(f"{self.command} {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(rejection.status)
                for key, value in rejection.headers:
                    self.send_header(key, value)
                self.send_header("Content-Type", rejection.content_type)
                self.send_header("Content-Length", str(len(rejection.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(rejection.body)

            def _forward(self) -> None:
                slow = proxy.slow
                if slow and self.command == slow[0] and slow[1] in self.path:
                    proxy.slowed_requests.append(f"{self.command} {self.path}")
                    if proxy._closing.wait(slow[2]):
                        self.close_connection = True
                        return
                rejection = proxy.reject
                if rejection is not None:
                    self._reject(rejection)
                    return
                if any(fragment in self.path for fragment in proxy.fail_paths):
                    proxy.failed_requests.append(self.path)
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                connection = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                # counted before the client has it, so a count read after the client is done is complete
                sent = 0 if self.command == "HEAD" else len(data)
                proxy.exchanges.append(Exchange(self.command, self.path, response.status, sent))
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                if self.command == "HEAD":  # no body: keep the length the server announced
                    self.send_header("Content-Length", response.getheader("Content-Length") or "0")
                    self.end_headers()
                else:
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                connection.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FlakyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()
