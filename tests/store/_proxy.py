"""Test-only HTTP proxy: lets influxdb-client's v2 write API reach a real InfluxDB 1.6.7.

InfluxDB 1.6.7 predates the ``/api/v2/write`` compatibility endpoint (added in 1.8), so
this proxy rewrites ``POST /api/v2/write?bucket=B&precision=P`` to
``POST /write?db=B&precision=P'`` (ns→n, us→u, ms→ms, s→s) and passes every other request
(``/query``, ``/ping``) through unchanged, headers and (gzip) bodies included. It changes
no data, only the URL. When the server is down it answers 503, like a server restarting.

This is a fake in exactly one respect (the URL mapping); the storage engine behind it is
the real one. Not for production: the stores talk to InfluxDB 1.8+, 2.x or 3.x directly.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import threading
import time
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

PRECISIONS = {"ns": "n", "us": "u", "ms": "ms", "s": "s"}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


def rewrite_path(path: str) -> str:
    """Map a v2 write URL onto the 1.x ``/write`` URL; return other paths unchanged."""
    parts = urlsplit(path)
    if parts.path != "/api/v2/write":
        return path
    query = dict(parse_qsl(parts.query))
    params = {"db": query.get("bucket", "")}
    if "precision" in query:
        params["precision"] = PRECISIONS[query["precision"]]
    return "/write?" + urlencode(params)


def _is_gzip(headers: Message) -> bool:
    return (headers.get("Content-Encoding") or "").lower() == "gzip"


class InfluxV2WriteProxy:
    """Serve the proxy on ``127.0.0.1:<free port>`` in a background thread.

    Parameters
    ----------
    upstream_port : int
        Port of the InfluxDB 1.x server on 127.0.0.1.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        #: Seconds to hold each write before forwarding it (simulates a slow server).
        self.write_delay = 0.0
        self.n_writes = 0
        #: Bodies (decompressed) of the writes the server acknowledged, in arrival order.
        self.accepted_writes: list[bytes] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                path = rewrite_path(self.path)
                if path != self.path:
                    proxy.n_writes += 1
                    if proxy.write_delay:
                        time.sleep(proxy.write_delay)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                connection = http.client.HTTPConnection(
                    "127.0.0.1", proxy.upstream_port, timeout=30
                )
                try:
                    # influxd may answer (413) and close before reading an oversized body.
                    with contextlib.suppress(OSError):
                        connection.request(self.command, path, body=body, headers=headers)
                    answer = connection.getresponse()
                    data = answer.read()
                    status, reason, answer_headers = (
                        answer.status,
                        answer.reason,
                        answer.getheaders(),
                    )
                except (OSError, http.client.HTTPException) as exc:
                    data = f'{{"error": "proxy: upstream unavailable: {exc}"}}'.encode()
                    status, reason = 503, "Service Unavailable"
                    answer_headers = [("Content-Type", "application/json")]
                finally:
                    connection.close()
                if path != self.path and status == 204 and body is not None:
                    plain = gzip.decompress(body) if _is_gzip(self.headers) else body
                    with proxy._lock:
                        proxy.accepted_writes.append(plain)
                self.send_response(status, reason)
                for key, value in answer_headers:
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
