"""A fake of GitHub's REST API for issue comments, on 127.0.0.1.

GitHub's web API is the one outside service the tests fake: nothing else can stand in for it
offline. The fake keeps comments in memory and answers the calls ci-helpers makes:
`GET /repos/{o}/{r}/issues/{n}/comments` (per_page and page honoured, a `Link` header with
rel="next"/"last"), `POST` on the same path, `PATCH /repos/{o}/{r}/issues/comments/{id}`, and `GET /repos/{o}/{r}/commits/{sha}/pulls` (the pull
requests a test set in `commit_pulls`). It checks
the bearer token (401 otherwise), can refuse writes with 403 as a fork PR's read-only token gets,
and can fail the next N requests with 502. Every request is recorded for the tests to inspect.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.support.fake_http import Request, send_json, start_server, stop_server

_LIST = re.compile(r"^/repos/([^/]+/[^/]+)/issues/(\d+)/comments$")
_ONE = re.compile(r"^/repos/([^/]+/[^/]+)/issues/comments/(\d+)$")
_COMMIT_PULLS = re.compile(r"^/repos/([^/]+/[^/]+)/commits/([0-9a-f]+)/pulls$")


@dataclass
class FakeGitHub:
    token: str
    comments: dict[int, dict] = field(default_factory=dict)  # id -> {"id", "issue", "repo", "body", "user"}
    requests: list[Request] = field(default_factory=list)
    commit_pulls: dict[tuple[str, str], list[dict]] = field(default_factory=dict)  # (repo, sha) -> pulls
    read_only: bool = False
    fail_next: int = 0  # answer this many requests with 502 first
    _next_id: int = 1000
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add_comment(self, repo: str, issue: int, body: str, user: str = "someone") -> int:
        with self._lock:
            self._next_id += 1
            self.comments[self._next_id] = {
                "id": self._next_id,
                "issue": issue,
                "repo": repo,
                "body": body,
                "user": {"login": user},
            }
            return self._next_id

    def comments_on(self, repo: str, issue: int) -> list[dict]:
        with self._lock:
            return [
                c
                for c in sorted(self.comments.values(), key=lambda c: c["id"])
                if (c["repo"], c["issue"]) == (repo, issue)
            ]

    def start(self) -> FakeGitHub:
        self._server = start_server(lambda handler: self._handle(handler, handler.command), ("GET", "POST", "PATCH"))
        return self

    def stop(self) -> None:
        stop_server(self._server)

    # -- request handling ------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode() if length else ""
        parts = urlsplit(handler.path)
        self.requests.append(Request(method, handler.path, dict(handler.headers.items()), raw))
        refusal = self._refusal(handler, method)
        if refusal:
            _send(handler, *refusal)
            return
        listing, single = _LIST.match(parts.path), _ONE.match(parts.path)
        pulls = _COMMIT_PULLS.match(parts.path)
        if pulls and method == "GET":
            _send(handler, 200, self.commit_pulls.get((pulls.group(1), pulls.group(2)), []))
        elif listing and method == "GET":
            self._list(handler, listing.group(1), int(listing.group(2)), parse_qs(parts.query))
        elif listing and method == "POST":
            self._create(handler, listing.group(1), int(listing.group(2)), raw)
        elif single and method == "PATCH":
            self._update(handler, single.group(1), int(single.group(2)), raw)
        else:
            _send(handler, 404, {"message": "Not Found"})

    def _refusal(self, handler: BaseHTTPRequestHandler, method: str) -> tuple[int, dict] | None:
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return 502, {"message": "Server Error"}
        if handler.headers.get("Authorization") not in (f"Bearer {self.token}", f"token {self.token}"):
            return 401, {"message": "Bad credentials"}
        if method != "GET" and self.read_only:
            return 403, {"message": "Resource not accessible by integration"}
        return None

    def _create(self, handler: BaseHTTPRequestHandler, repo: str, issue: int, raw: str) -> None:
        body = json.loads(raw or "{}").get("body")
        if not isinstance(body, str) or len(body) > 65536:
            return _send(handler, 422, {"message": "Validation Failed"})
        new_id = self.add_comment(repo, issue, body, user="github-actions[bot]")
        return _send(handler, 201, self.comments[new_id])

    def _update(self, handler: BaseHTTPRequestHandler, repo: str, comment_id: int, raw: str) -> None:
        comment = self.comments.get(comment_id)
        if comment is None or comment["repo"] != repo:
            return _send(handler, 404, {"message": "Not Found"})
        body = json.loads(raw or "{}").get("body")
        if not isinstance(body, str) or len(body) > 65536:
            return _send(handler, 422, {"message": "Validation Failed"})
        with self._lock:
            comment["body"] = body
        return _send(handler, 200, comment)

    def _list(self, handler: BaseHTTPRequestHandler, repo: str, issue: int, query: dict) -> None:
        per_page = min(100, int(query.get("per_page", ["30"])[0]))
        page = max(1, int(query.get("page", ["1"])[0]))
        items = self.comments_on(repo, issue)
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        base = f"{self.url}/repos/{repo}/issues/{issue}/comments?per_page={per_page}"
        links = []
        if page < last:
            links.append(f'<{base}&page={page + 1}>; rel="next"')
            links.append(f'<{base}&page={last}>; rel="last"')
        if page > 1:
            links.append(f'<{base}&page=1>; rel="first"')
            links.append(f'<{base}&page={page - 1}>; rel="prev"')
        _send(handler, 200, chunk, {"Link": ", ".join(links)} if links else {})


_send = partial(send_json, content_type="application/json; charset=utf-8")
