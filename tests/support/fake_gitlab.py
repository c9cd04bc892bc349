"""A stand-in GitLab instance on 127.0.0.1: a fake of its REST API for merge request notes, and
real git repositories served over smart HTTP.

GitLab's web API is the one kind of outside service the tests fake: gitlab.com cannot be reached
from here, and nothing else can stand in for it offline. The fake keeps notes in memory and answers
the calls ci-helpers makes, as GitLab's v4 API documents them:
`GET /api/v4/projects/:id/merge_requests/:iid/notes` (`per_page` up to 100, default 20; `page`;
`sort` asc or desc, default desc; the `X-Page`, `X-Per-Page`, `X-Next-Page` (empty on the last page),
`X-Prev-Page`, `X-Total`, `X-Total-Pages` and `Link` headers), `POST` on the same path, and
`PUT /api/v4/projects/:id/merge_requests/:iid/notes/:note_id`. It knows one project id (404
otherwise, as GitLab answers for a project the token cannot see), checks the `PRIVATE-TOKEN` header
(401 otherwise), can answer writes as GitLab answers a token without the `api` scope (403
insufficient_scope), and can fail the next N API requests with 502. Every API request is recorded.

Every other path is git's own smart-HTTP backend (`git http-backend`: real git, not a fake) over
the bare repositories under `git_root`, laid out as GitLab's `group/project.git`: anyone may clone
or fetch (a public project), a push must authenticate with `push_token` as its password (401 with a
Basic challenge otherwise, as GitLab asks). That makes the instance whole enough for
gitlab-ci-local, which derives $CI_SERVER_URL and $CI_API_V4_URL from the checkout's origin and
clones `include: component:` projects from the same host.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import SplitResult, parse_qs, urlencode, urlsplit

from tests.support.fake_http import Request, send_json, start_server, stop_server

PROJECT_ID = 1217  # gitlab-ci-local's $CI_PROJECT_ID
MAX_NOTE = 1_000_000
_NOTES = re.compile(r"^/api/v4/projects/(\d+)/merge_requests/(\d+)/notes$")
_NOTE = re.compile(r"^/api/v4/projects/(\d+)/merge_requests/(\d+)/notes/(\d+)$")
# status, JSON payload[, headers]
Answer = tuple[int, object] | tuple[int, object, dict[str, str]]
INSUFFICIENT_SCOPE = {
    "error": "insufficient_scope",
    "error_description": "The request requires higher privileges than provided by the access token.",
    "scope": "api",
}


@dataclass
class FakeGitLab:
    token: str
    git_root: Path | None = None
    push_token: str | None = None
    project_id: int = PROJECT_ID
    notes: dict[int, dict] = field(default_factory=dict)  # id -> note, plus "iid" and "project_id"
    requests: list[Request] = field(default_factory=list)  # API requests
    git_requests: list[tuple[str, str, bool]] = field(default_factory=list)  # method, path, authenticated
    read_only: bool = False  # writes answered as for a token without the api scope
    fail_next: int = 0  # answer this many API requests with 502 first
    _next_id: int = 500
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v4"

    def add_note(self, iid: int, body: str, author: str = "someone", system: bool = False) -> int:
        with self._lock:
            self._next_id += 1
            self.notes[self._next_id] = {
                "id": self._next_id,
                "body": body,
                "author": {"username": author},
                "system": system,
                "noteable_type": "MergeRequest",
                "noteable_iid": iid,
                "project_id": self.project_id,
            }
            return self._next_id

    def notes_on(self, iid: int) -> list[dict]:
        """The MR's notes, oldest first."""
        with self._lock:
            return [n for _, n in sorted(self.notes.items()) if n["noteable_iid"] == iid]

    def start(self) -> FakeGitLab:
        self._server = start_server(self._route, ("GET", "POST", "PUT"), poll_interval=0.05)
        return self

    def stop(self) -> None:
        stop_server(self._server)

    # -- routing ---------------------------------------------------------------------------------

    def _route(self, handler: BaseHTTPRequestHandler) -> None:
        body = _read_body(handler)
        if urlsplit(handler.path).path.startswith("/api/"):
            self._api(handler, body.decode("utf-8", "replace"))
        elif self.git_root is not None:
            self._git(handler, body)
        else:
            send_json(handler, 404, {"message": "404 Not Found"})

    # -- the REST API ----------------------------------------------------------------------------

    def _api(self, handler: BaseHTTPRequestHandler, raw: str) -> None:
        self.requests.append(Request(handler.command, handler.path, dict(handler.headers.items()), raw))
        send_json(handler, *self._answer(handler, raw))

    def _refusal(self, handler: BaseHTTPRequestHandler, match: re.Match | None) -> Answer | None:
        with self._lock:
            failing, self.fail_next = self.fail_next > 0, max(0, self.fail_next - 1)
        if failing:
            return 502, {"message": "502 Bad Gateway"}
        if handler.headers.get("PRIVATE-TOKEN") != self.token:
            return 401, {"message": "401 Unauthorized"}
        if match is None or int(match.group(1)) != self.project_id:
            return 404, {"message": "404 Project Not Found"}
        if handler.command != "GET" and self.read_only:
            return 403, INSUFFICIENT_SCOPE
        return None

    def _answer(self, handler: BaseHTTPRequestHandler, raw: str) -> Answer:
        method, parts = handler.command, urlsplit(handler.path)
        listing, single = _NOTES.match(parts.path), _NOTE.match(parts.path)
        match = listing or single
        refusal = self._refusal(handler, match)
        if refusal is not None or match is None:
            return refusal or (404, {"message": "404 Not Found"})
        iid = int(match.group(2))
        if listing and method in ("GET", "POST"):
            return self._list(iid, parts, parse_qs(parts.query)) if method == "GET" else self._create(iid, raw)
        if single and method == "PUT":
            return self._update(iid, int(single.group(3)), raw)
        return 405, {"message": "405 Method Not Allowed"}

    def _create(self, iid: int, raw: str) -> Answer:
        body = _note_body(raw)
        if isinstance(body, tuple):
            return body
        return 201, self.notes[self.add_note(iid, body, author="project_1217_bot")]

    def _update(self, iid: int, note_id: int, raw: str) -> Answer:
        note = self.notes.get(note_id)
        body = _note_body(raw)
        if note is None or note["noteable_iid"] != iid:
            return 404, {"message": "404 Note Not Found"}
        if isinstance(body, tuple):
            return body
        with self._lock:
            note["body"] = body
        return 200, note

    def _list(self, iid: int, parts: SplitResult, query: dict) -> Answer:
        per_page = max(1, min(100, int(query.get("per_page", ["20"])[0])))
        page = max(1, int(query.get("page", ["1"])[0]))
        items = self.notes_on(iid)
        if query.get("sort", ["desc"])[0] != "asc":
            items.reverse()
        pages = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        base = {k: v[0] for k, v in query.items() if k != "page"}

        def link(number: int, rel: str) -> str:
            return f'<{self.url}{parts.path}?{urlencode({**base, "page": number})}>; rel="{rel}"'

        links = [link(page + 1, "next")] if page < pages else []
        links += [link(page - 1, "prev")] if page > 1 else []
        links += [link(1, "first"), link(pages, "last")]
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
            "X-Total": str(len(items)),
            "X-Total-Pages": str(pages),
            "Link": ", ".join(links),
        }
        return 200, chunk, headers

    # -- git over smart HTTP ---------------------------------------------------------------------

    def _git(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        path, _, query = handler.path.partition("?")
        pushing = "git-receive-pack" in path or "service=git-receive-pack" in query
        authenticated = self._push_credentials_ok(handler.headers.get("Authorization", ""))
        self.git_requests.append((handler.command, handler.path, authenticated))
        if pushing and not authenticated:
            handler.send_response(401)
            handler.send_header("WWW-Authenticate", 'Basic realm="GitLab"')
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        env = {
            **os.environ,
            "GIT_PROJECT_ROOT": str(self.git_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": handler.command,
            "CONTENT_TYPE": handler.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": handler.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": handler.headers.get("Git-Protocol", ""),
            "REMOTE_ADDR": "127.0.0.1",
        }
        if authenticated:
            env["REMOTE_USER"] = "project_1217_bot"  # http-backend takes pushes from a known user only
        cgi = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
        head, _, payload = cgi.stdout.partition(b"\r\n\r\n" if b"\r\n\r\n" in cgi.stdout else b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _push_credentials_ok(self, authorization: str) -> bool:
        if not self.push_token or not authorization.startswith("Basic "):
            return False
        try:
            _, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        except ValueError:
            return False
        return password == self.push_token


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() != "chunked":
        length = int(handler.headers.get("Content-Length") or 0)
        return handler.rfile.read(length) if length else b""
    chunks = []
    while size := int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16):
        chunks.append(handler.rfile.read(size))
        handler.rfile.readline()
    handler.rfile.readline()
    return b"".join(chunks)


def _note_body(raw: str) -> str | tuple[int, object]:
    """The note's body from a JSON request, or GitLab's 400 answer."""
    try:
        body = json.loads(raw or "{}").get("body")
    except (ValueError, AttributeError):
        body = None
    if not isinstance(body, str):
        return 400, {"error": "body is missing"}
    if len(body) > MAX_NOTE:
        return 400, {"message": {"note": [f"is too long (maximum is {MAX_NOTE} characters)"]}}
    return body
