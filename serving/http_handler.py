"""HTTP/1.1 plumbing for a JSON API on ``http.server``: bodies read safely, every error answered in JSON.

``BaseHTTPRequestHandler`` leaves several holes that a JSON API must close:

- its own errors (a malformed request line, an unsupported method, oversized headers) are HTML pages:
  :meth:`JSONRequestHandler.send_error` answers them in OpenAI's error shape instead;
- a response sent before the request body was read leaves that body on a keep-alive connection, where it is
  parsed as the next request line: every error response here first drains a body of known, acceptable size, and
  otherwise closes the connection (``Connection: close``);
- ``Content-Length`` is trusted as it comes: here a missing, non-numeric, negative, conflicting or oversized length
  is a 400/411/413, and a chunked request body (which ``http.server`` cannot read) a 411;
- JSON nested deeper than the parser's recursion limit raises ``RecursionError``: here it is a 400.

Reads and writes time out after the handler's ``timeout`` (set by the server), so a client that announces more
body than it sends gets a 408 and the connection closes instead of holding a thread forever.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from .chat_request import RequestError


class JSONRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "clinrag-serve"
    max_body_bytes = 8 * 1024 * 1024

    def log_message(self, format: str, *args: Any) -> None:  # quiet: no request lines (nor case text) in logs
        pass

    # -- the request --------------------------------------------------------------------------------------
    def route(self) -> str:
        self._body_pending = self._announced_body()
        return self.path.split("?", 1)[0].rstrip("/")

    def _announced_body(self) -> bool:
        return bool(self.headers.get("Transfer-Encoding")) or self.headers.get("Content-Length", "0").strip() != "0"

    def _content_length(self) -> int:
        if self.headers.get("Transfer-Encoding"):
            raise RequestError("chunked request bodies are not supported: send Content-Length", 411)
        values = self.headers.get_all("Content-Length") or []
        if not values:
            raise RequestError("Content-Length is required", 411)
        if len({v.strip() for v in values}) > 1 or not values[0].strip().isdigit():
            raise RequestError(f"Content-Length must be one non-negative integer (got {values[0][:40]!r})")
        length = int(values[0])
        if length == 0:
            raise RequestError("the request body is empty: send a JSON object")
        if length > self.max_body_bytes:
            raise RequestError(f"the request body is {length} bytes; at most {self.max_body_bytes} are accepted",
                               413, "request_too_large")
        return length

    def _read_body(self, length: int) -> bytes:
        self._body_pending = None  # until the whole body is in: the connection cannot be reused
        try:
            data = self.rfile.read(length)
        except TimeoutError:
            raise RequestError(f"the request body did not arrive within {self.timeout:g} s", 408, "timeout") from None
        if len(data) < length:  # the client closed its side mid-body
            raise RequestError(f"the request body ended after {len(data)} of {length} bytes")
        self._body_pending = False
        return data

    def read_json(self) -> Any:
        data = self._read_body(self._content_length())
        try:
            return json.loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise RequestError("the request body is not UTF-8") from None
        except RecursionError:
            raise RequestError("the request body is JSON nested too deeply") from None
        except ValueError as exc:
            raise RequestError(f"the request body is not valid JSON: {exc}") from None

    # -- responses ----------------------------------------------------------------------------------------
    def _drain_or_close(self) -> bool:
        """Before responding: read a still unread body of acceptable size, else close. True when closing."""
        pending = getattr(self, "_body_pending", True)
        if pending is None:  # a body read failed half way: what is left on the socket is unknown
            return True
        if not pending:
            return False
        try:
            self._read_body(self._content_length())
            return False
        except (RequestError, OSError):
            return True

    def send_json(self, status: int, payload: dict[str, Any], *, close: bool = False) -> None:
        close = self._drain_or_close() or close
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def send_request_error(self, exc: RequestError) -> None:
        self.send_json(exc.status, {"error": {"message": str(exc), "type": exc.code, "code": exc.status}})

    def parse_request(self) -> bool:
        # http.server takes a request line without a version for HTTP/0.9 and answers it with a bare body, no
        # status line: a client of a JSON API never means that, so it is a malformed request here.
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":
            self.send_error(400, "Bad request: HTTP/0.9 is not supported")
            return False
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """``http.server``'s own errors (bad request line, unknown method, long headers), as JSON; the request was
        not understood, so the connection closes."""
        if self.request_version == "HTTP/0.9":  # or http.server would leave out the status line and headers
            self.request_version = "HTTP/1.0"
        text = message or self.responses.get(code, ("error",))[0]
        self.close_connection = True
        data = json.dumps({"error": {"message": text, "type": "invalid_request_error", "code": code}}).encode()
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(data)

    # -- server-sent events (chunked transfer encoding keeps the connection reusable) ----------------------
    def start_event_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def send_event(self, payload: dict[str, Any]) -> None:
        self._chunk(b"data: " + json.dumps(payload, ensure_ascii=False).encode("utf-8") + b"\n\n")

    def end_event_stream(self) -> None:
        self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
