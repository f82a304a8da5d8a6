"""Static HTTP servers on 127.0.0.1 for images, pages and model hosting."""

from __future__ import annotations

import functools
import re
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def end_headers(self) -> None:
        # Browsers may cache between runs of one profile; tests want fresh bytes.
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


class ModelHostHandler(_QuietHandler):
    """A model host: serves byte ranges (resumable downloads), and can cut a
    transfer once at an absolute byte offset of a file (`cut_at`: path ->
    offset) or serve other bytes than the file's (`replace`: path -> bytes),
    as a flaky network or a compromised host would."""

    cut_at: dict[str, int] = {}
    replace: dict[str, bytes] = {}

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = self.replace.get(self.path) or path.read_bytes()
        start, end, status = 0, len(data) - 1, 200
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            end = min(end, int(match.group(2))) if match.group(2) else end
            status = 206
        body = data[start:end + 1]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        cut = self.cut_at.get(self.path)
        if cut is not None and start <= cut <= end:
            del self.cut_at[self.path]
            self.wfile.write(body[:cut - start])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


class StaticServer:
    """Serves `root` on 127.0.0.1 at a free port until closed; logs every request
    (path and Range header)."""

    def __init__(self, root: Path, handler: type[SimpleHTTPRequestHandler] = _QuietHandler,
                 port: int = 0) -> None:
        self.requests: list[str] = []
        self.ranges: list[tuple[str, str]] = []
        requests, ranges = self.requests, self.ranges

        class Recording(handler):  # type: ignore[misc, valid-type]
            def send_response(self, code: int, message: str | None = None) -> None:
                requests.append(self.path)
                ranges.append((self.path, self.headers.get("Range", "")))
                super().send_response(code, message)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port),
                                         functools.partial(Recording, directory=str(root)))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> StaticServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RecordingProxy:
    """An HTTP proxy on 127.0.0.1 that records every request the browser makes.

    Chromium started with `--proxy-server` and `--proxy-bypass-list=<-loopback>`
    sends all traffic of every context (pages, service worker, offscreen
    document) through it, so the log proves which hosts were contacted.
    Requests to `allowed` origins are forwarded; all others are refused.
    """

    def __init__(self, allowed: set[str]) -> None:
        import urllib.error
        import urllib.request
        from http.server import BaseHTTPRequestHandler

        self.log: list[tuple[str, str, str]] = []  # (method, url or host:port, Origin header)
        log, allow = self.log, allowed
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_CONNECT(self) -> None:  # https: recorded and refused
                log.append(("CONNECT", self.path, self.headers.get("Origin", "")))
                self.send_error(403)

            def do_GET(self) -> None:
                log.append((self.command, self.path, self.headers.get("Origin", "")))
                origin = "/".join(self.path.split("/", 3)[:3])
                if origin not in allow:
                    self.send_error(403, "not allowed by the test proxy")
                    return
                try:
                    with opener.open(self.path, timeout=30) as upstream:
                        body, status, headers = upstream.read(), upstream.status, upstream.headers
                except urllib.error.HTTPError as e:
                    body, status, headers = e.read(), e.code, e.headers
                self.send_response(status)
                for key in ("Content-Type", "Last-Modified"):
                    if headers.get(key):
                        self.send_header(key, headers[key])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_POST = do_GET

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def chromium_args(self) -> tuple[str, ...]:
        return (f"--proxy-server=http://{self.address}", "--proxy-bypass-list=<-loopback>")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
