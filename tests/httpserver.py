"""A threaded HTTP server on 127.0.0.1 that serves fixture bytes and misbehaves on request.

Each route is a path with its bytes and a mode:
    ok            200, or 206 for a Range request (`bytes=a-` and `bytes=a-b`)
    cut           the first response announces the full length, sends `cut_at` bytes and
                  closes the connection; later requests behave like `ok`
    fail          the first `failures` requests get HTTP `status`; later ones like `ok`
    wrong         serves `wrong` bytes instead of the route's bytes (a corrupt mirror)
    ignore_range  always 200 with the whole body, whatever the Range header says
    slow          waits `delay` seconds before it answers (a client's read timeout)
Unknown paths get 404. Every request is logged as (path, Range header, status).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    data: bytes
    mode: str = "ok"
    cut_at: int | None = None
    failures: int = 0
    status: int = 503
    wrong: bytes | None = None
    delay: float = 0.0
    requests: int = field(default=0, init=False)


@dataclass(frozen=True)
class Request:
    path: str
    range: str | None
    status: int


class FixtureServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.log: list[Request] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        # A short poll interval keeps shutdown (one poll) from dominating test time.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> FixtureServer:
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

    def add(self, path: str, data: bytes, mode: str = "ok", **options) -> str:
        """Serve `data` at `path`; returns the URL."""
        path = "/" + path.lstrip("/")
        self.routes[path] = Route(data, mode, **options)
        return self.base + path

    def url(self, path: str) -> str:
        return self.base + "/" + path.lstrip("/")

    def requests_for(self, path: str) -> list[Request]:
        path = "/" + path.lstrip("/")
        return [r for r in self.log if r.path == path]

    def _record(self, request: Request) -> None:
        with self._lock:
            self.log.append(request)

    def _count(self, route: Route) -> int:
        with self._lock:
            route.requests += 1
            return route.requests


def _handler_for(server: FixtureServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        fixture = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    fixture: FixtureServer

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_GET(self) -> None:
        route = self.fixture.routes.get(self.path)
        range_header = self.headers.get("Range")
        if route is None:
            return self._status(404, range_header)
        nth = self.fixture._count(route)
        if route.mode == "slow":
            time.sleep(route.delay)
        if route.mode == "fail" and nth <= route.failures:
            return self._status(route.status, range_header)
        data = route.wrong if route.mode == "wrong" else route.data
        honour_range = route.mode != "ignore_range"
        start, end = _parse_range(range_header, len(data)) if honour_range else (None, None)
        if start is not None and start >= len(data):
            return self._unsatisfiable(len(data), range_header)
        cut = route.cut_at if route.mode == "cut" and nth == 1 else None
        self._send(data, start, end, range_header, cut)

    def _status(self, status: int, range_header: str | None) -> None:
        self.fixture._record(Request(self.path, range_header, status))
        body = f"HTTP {status}\n".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _unsatisfiable(self, size: int, range_header: str | None) -> None:
        self.fixture._record(Request(self.path, range_header, 416))
        self.send_response(416)
        self.send_header("Content-Range", f"bytes */{size}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, data: bytes, start: int | None, end: int | None, range_header: str | None, cut: int | None) -> None:
        status = 200 if start is None else 206
        start = start or 0
        end = len(data) - 1 if end is None else end
        body = data[start : end + 1]
        self.fixture._record(Request(self.path, range_header, status))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        if cut is None:
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # a client that timed out and left
                self.close_connection = True
            return
        self.wfile.write(body[:cut])
        self.wfile.flush()
        # A dropped connection: the client saw Content-Length but gets fewer bytes.
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)


def _parse_range(header: str | None, size: int) -> tuple[int | None, int | None]:
    match = re.fullmatch(r"bytes=(\d+)-(\d*)", (header or "").strip())
    if not match:
        return None, None
    start = int(match.group(1))
    end = min(int(match.group(2)), size - 1) if match.group(2) else None
    return start, end
