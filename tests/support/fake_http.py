"""What the fake GitHub and GitLab servers share: a quiet HTTP server on a free 127.0.0.1 port, the
requests they record and their JSON answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: str


def start_server(
    handle: Callable[[BaseHTTPRequestHandler], None], methods: tuple[str, ...], poll_interval: float = 0.5
) -> ThreadingHTTPServer:
    """Serve in a daemon thread; a request with one of `methods` goes to `handle`, any other gets 501."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _dispatch(self) -> None:
            handle(self)

    for method in methods:
        setattr(Handler, f"do_{method}", Handler._dispatch)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True).start()
    return server


def stop_server(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


def send_json(
    handler: BaseHTTPRequestHandler,
    status: int,
    payload: object,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)
