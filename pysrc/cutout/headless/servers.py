"""Static HTTP servers on 127.0.0.1 for images, pages and model hosting."""

from __future__ import annotations

import functools
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


class StaticServer:
    """Serves `root` on 127.0.0.1 at a free port until closed; logs every request path."""

    def __init__(self, root: Path, handler: type[SimpleHTTPRequestHandler] = _QuietHandler) -> None:
        self.requests: list[str] = []
        requests = self.requests

        class Recording(handler):  # type: ignore[misc, valid-type]
            def send_response(self, code: int, message: str | None = None) -> None:
                requests.append(self.path)
                super().send_response(code, message)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0),
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
