"""A tiny scripted HTTP server on 127.0.0.1 for CLI tests (standard library only: runs in the lean env)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@contextmanager
def scripted_server(
    routes: dict[tuple[str, str], tuple[int, Any]],
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Serve ``{(method, path): (status, json_body or raw bytes)}``; yields (base URL, recorded requests)."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = dict(self.headers)
            seen.append({"method": self.command, "path": self.path, "body": body, "headers": headers})
            status, payload = routes.get((self.command, path), (404, {"detail": "no route"}))
            raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
