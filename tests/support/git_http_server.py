"""A git smart-HTTP server on 127.0.0.1: `git http-backend` run as CGI behind HTTP Basic auth (one
user, one token), serving the bare repos of a folder. Clone, fetch, ls-remote and push work through
it (http-backend enables receive-pack for an authenticated REMOTE_USER). Each request is recorded
(method, path, status, the user it authenticated as) so a test can see what reached the server."""

from __future__ import annotations

import base64
import hmac
import os
import secrets
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    status: int
    authorization: str | None  # the Authorization header as sent (a test checks no stale secret is reused)


@dataclass
class GitHttpServer:
    url: str  # http://127.0.0.1:PORT; a repo `name` is at {url}/{name}.git
    username: str
    token: str
    root: Path  # the folder of bare repos
    requests: list[Request] = field(default_factory=list)
    # called on each request while the client waits (a test looks at the processes running then)
    on_request: Callable[[], None] | None = None

    def repo_url(self, name: str) -> str:
        return f"{self.url}/{name}.git"

    def bare_repo(self, name: str, branch: str = "main") -> Path:
        """A new empty bare repo served as repo_url(name)."""
        path = self.root / f"{name}.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", branch, str(path)], check=True, capture_output=True)
        return path


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body: Content-Length, or chunked (git sends large pushes and fetches chunked)."""
    if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
        body = bytearray()
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(body)
            body += handler.rfile.read(size)
            handler.rfile.readline()  # the CRLF after each chunk
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _handler(server: GitHttpServer) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"{server.username}:{server.token}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            body = _read_body(self)
            if server.on_request is not None:
                server.on_request()
            authorization = self.headers.get("Authorization")
            if authorization is None or not hmac.compare_digest(authorization.encode(), expected.encode()):
                server.requests.append(Request(self.command, self.path, 401, authorization))
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status, headers, content = self._backend(body)
            server.requests.append(Request(self.command, self.path, status, authorization))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def _backend(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            parts = urlsplit(self.path)
            env = {
                "PATH": os.environ["PATH"],
                "HOME": str(server.root),  # no user's global config
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_PROJECT_ROOT": str(server.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": unquote(parts.path),
                "QUERY_STRING": parts.query,
                "CONTENT_TYPE": self.headers.get("Content-Type") or "",
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": server.username,
                "REMOTE_ADDR": "127.0.0.1",
                "GIT_PROTOCOL": self.headers.get("Git-Protocol") or "",
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding") or "",
            }
            done = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
            raw = done.stdout
            head, separator, content = raw.partition(b"\r\n\r\n")
            if not separator:
                head, _, content = raw.partition(b"\n\n")
            status, headers = 200, []
            for line in head.decode("latin-1").splitlines():
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    headers.append((name.strip(), value.strip()))
            if done.returncode != 0 and not raw:
                return 500, [], done.stderr
            return status, headers, content

    return Handler


@contextmanager
def git_http_server(root: Path, username: str = "ci-bot", token: str | None = None) -> Iterator[GitHttpServer]:
    """Serve the bare repos under `root` on 127.0.0.1 (a free port) for the block's duration."""
    root.mkdir(parents=True, exist_ok=True)
    server = GitHttpServer("", username, token or f"tok-{secrets.token_hex(16)}", root)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    httpd.daemon_threads = True
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, name="git-http-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)
