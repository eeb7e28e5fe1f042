"""Malformed requests against a real ``clinrag serve`` (SmolLM2 subprocess) over raw sockets: each gets a
well-formed JSON error, the connection is drained or closed so the next request starts clean, a stalled body
times out, and the server neither dies nor prints a traceback."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.slow

OK_BODY = json.dumps({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}).encode()


def post(body: bytes, *, path: str = "/v1/chat/completions", headers: dict[str, str] | None = None,
         length: str | None = None) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: x", "Content-Type: application/json"]
    head += [f"Content-Length: {len(body) if length is None else length}"] if length != "" else []
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Conn:
    """One keep-alive connection; ``response()`` reads exactly one HTTP response off it."""

    def __init__(self, base: str, timeout: float = 20) -> None:
        url = urlsplit(base)
        self.sock = socket.create_connection((url.hostname, url.port), timeout=timeout)
        self.buf = b""

    def send(self, data: bytes) -> Conn:
        self.sock.sendall(data)
        return self

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def response(self) -> tuple[int, dict[str, str], dict]:
        while b"\r\n\r\n" not in self.buf:
            assert self._fill(), "connection closed before a response"
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        n = int(headers["content-length"])
        while len(self.buf) < n:
            assert self._fill(), "connection closed mid-body"
        body, self.buf = self.buf[:n], self.buf[n:]
        assert headers["content-type"] == "application/json", (status, body[:200])
        return status, headers, json.loads(body)

    def closed_by_server(self) -> bool:
        self.sock.settimeout(10)
        try:
            return not self.buf and self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


NESTED = b'{"messages": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
BAD = [  # (raw request, status, message fragment, connection reusable afterwards)
    (post(b"{not json"), 400, "not valid JSON", True),
    (post(b"\xff\xfe{}"), 400, "not UTF-8", True),
    (post(NESTED), 400, "nested too deeply", True),
    (post(b"[1, 2]"), 400, "JSON object", True),
    (post(OK_BODY, length="abc"), 400, "Content-Length", False),
    (post(OK_BODY, length="-5"), 400, "Content-Length", False),
    (post(b"", length=""), 411, "Content-Length is required", True),
    (post(b"", length="0"), 400, "empty", True),
    (post(b"", length=str(9 * 1024 * 1024)), 413, "at most", False),  # refused before the body is sent
    (post(b"5\r\n{}{}{\r\n0\r\n\r\n", length="", headers={"Transfer-Encoding": "chunked"}), 411, "chunked", False),
    (post(OK_BODY, path="/v1/nowhere"), 404, "no route", True),  # answered before reading: body drained
    (post(json.dumps({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}).encode()), 400,
     "temperature", True),
    (post(json.dumps({"messages": [{"role": "user", "content": "x"}], "stop": [1]}).encode()), 400, "stop", True),
    (b"GARBAGE\r\n\r\n", 400, "Bad request", False),
    (b"GET /v1/models\r\n\r\n", 400, "HTTP/0.9", False),
    (b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"a" * 70_000 + b"\r\n\r\n", 431, "too long", False),
    (b"PUT /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 501, "Unsupported method",
     False),
]


@pytest.mark.parametrize("raw,status,fragment,reusable", BAD, ids=[f"{b[1]}-{b[2][:24]}" for b in BAD])
def test_malformed_request_gets_json_error_and_a_clean_connection(smollm2_server, raw, status, fragment, reusable):
    conn = Conn(smollm2_server)
    try:
        code, headers, body = conn.send(raw).response()
        assert code == status and fragment in body["error"]["message"] and body["error"]["code"] == status
        if reusable:  # the next request on the same connection is answered normally (no HTML 400)
            code, _, body = conn.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").response()
            assert code == 200 and body == {"status": "ok"}
        else:
            assert headers.get("connection") == "close" and conn.closed_by_server()
    finally:
        conn.close()


def test_short_body_times_out_instead_of_hanging(smollm2_server):
    """The fixture's server reads with a 3 s timeout: 10 of 200 announced bytes get a 408, then a close."""
    conn = Conn(smollm2_server)
    try:
        start = time.monotonic()
        code, headers, body = conn.send(post(OK_BODY[:10], length="200")).response()
        assert code == 408 and "did not arrive" in body["error"]["message"] and time.monotonic() - start < 15
        assert headers.get("connection") == "close" and conn.closed_by_server()
    finally:
        conn.close()


def test_server_survives_and_prints_no_traceback(smollm2_server, smollm2_server_stderr):
    for raw, *_ in BAD:  # all of them again, each on a connection the client then drops without reading
        conn = Conn(smollm2_server)
        conn.send(raw).close()
    stream = json.dumps({"messages": [{"role": "user", "content": "Tell me a long story."}], "max_tokens": 16,
                         "stream": True}).encode()
    conn = Conn(smollm2_server).send(post(stream))
    while b"data:" not in conn.buf:  # the first event arrived: hang up mid-stream
        assert conn._fill()
    conn.close()
    conn = Conn(smollm2_server)
    try:
        code, _, body = conn.send(post(OK_BODY)).response()
        assert code == 200 and body["usage"]["completion_tokens"] == 1
    finally:
        conn.close()
    assert "Traceback" not in smollm2_server_stderr()
