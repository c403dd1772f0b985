"""A Hugging Face Hub on 127.0.0.1 for tests: serves files of model and dataset repos the way
`huggingface_hub.hf_hub_download` reads them (point HF_ENDPOINT at `.base`).

    HEAD/GET /{repo}/resolve/{revision}/{path}            model repos
    HEAD/GET /datasets/{repo}/resolve/{revision}/{path}   dataset repos

Every file is served as an LFS file: `X-Repo-Commit` (the repo's commit), `X-Linked-Etag`
(the content's sha256, which the client names the cached blob after) and `X-Linked-Size`;
a missing file answers 404 with `X-Error-Code: EntryNotFound`, as the Hub does. Every
request is logged as (method, path).
"""

from __future__ import annotations

import hashlib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_ROUTE = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


class HubServer:
    def __init__(self, commit: str = "0123456789abcdef0123456789abcdef01234567") -> None:
        self.files: dict[tuple[str, str], bytes] = {}  # (repo, path) -> bytes
        self.commit = commit
        self.log: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, repo: str, path: str, data: bytes) -> None:
        self.files[(repo, path)] = data

    def downloads(self, path_end: str = "") -> list[str]:
        """GET requests (whole transfers), optionally of paths ending in `path_end`."""
        return [p for m, p in self.log if m == "GET" and p.endswith(path_end)]

    def _record(self, method: str, path: str) -> None:
        with self._lock:
            self.log.append((method, path))


def _handler_for(server: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        hub = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def _answer(self, send_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        self.hub._record(self.command, path)
        match = _ROUTE.match(path)
        data = self.hub.files.get((match.group(2), match.group(4))) if match else None
        if data is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound" if match else "RepoNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        digest = hashlib.sha256(data).hexdigest()
        self.send_response(200)
        self.send_header("X-Repo-Commit", self.hub.commit)
        self.send_header("ETag", f'"{digest}"')
        self.send_header("X-Linked-Etag", f'"{digest}"')
        self.send_header("X-Linked-Size", str(len(data)))
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if send_body:
            self.wfile.write(data)
