"""An OpenAI-compatible chat server over an :class:`~clinrag.plugins.generators.hf.HFChatLLM` (``clinrag serve``).

Endpoints: ``GET /v1/models``, ``POST /v1/chat/completions`` (non-streaming, ``n=1``) and ``GET /health``.
Standard library only (``http.server.ThreadingHTTPServer``): each connection gets a thread that parks its
request on a queue; one worker thread drains the queue into **micro-batches** (requests that arrive within
``batch_window_s`` of each other, up to ``max_batch``) and decodes each batch with one
:func:`~clinrag.plugins.generators.decoding.greedy_generate` call, so the concurrent sub-question requests of
a case share one decode and their common system + scenario prefix is computed once.

Decoding is greedy: sampling parameters (``temperature``, ``top_p``, ``seed``) are accepted and ignored.
It binds 127.0.0.1 by default; it has no authentication, so expose it only behind something that does.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from clinrag.core.defaults import (
    SERVE_HOST,
    SERVE_MAX_BATCH,
    SERVE_MAX_TOKENS,
    SERVE_PORT,
)

MAX_BODY_BYTES = 8 * 1024 * 1024
_ROLES = {"system", "user", "assistant"}


class RequestError(ValueError):
    def __init__(self, message: str, status: int = 400, code: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass
class _Job:
    messages: list[dict[str, str]]
    max_new_tokens: int
    done: threading.Event = field(default_factory=threading.Event)
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    error: BaseException | None = None


def _content_text(content: Any, where: str) -> str:
    """``"text"`` or the list-of-parts form ``[{"type": "text", "text": "..."}]``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(p.get("text", "")) for p in content)
    raise RequestError(f"{where}.content must be a string or a list of text parts")


def parse_chat_request(body: Any, *, served_model: str, default_max_tokens: int, max_tokens_cap: int) -> _Job:
    """Validate a ``/v1/chat/completions`` body into a job (errors name the offending field)."""
    if not isinstance(body, dict):
        raise RequestError("request body must be a JSON object")
    model = body.get("model")
    if model not in (None, "", served_model):
        raise RequestError(f"model {model!r} is not served here (serving {served_model!r})", 404, "model_not_found")
    if body.get("stream"):
        raise RequestError("stream=true is not supported; send stream=false")
    if body.get("n", 1) != 1:
        raise RequestError("only n=1 is supported")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise RequestError("messages must be a non-empty list")
    messages = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            raise RequestError(f"messages[{i}].role must be one of {sorted(_ROLES)}")
        messages.append({"role": m["role"], "content": _content_text(m.get("content"), f"messages[{i}]")})
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is None:
        limit = default_max_tokens
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise RequestError("max_tokens must be a positive integer")
    return _Job(messages, min(limit, max_tokens_cap))


class ChatServer:
    """Owns the HTTP server and the batching worker. ``start()`` runs both in background threads."""

    def __init__(self, llm: Any, *, served_model: str, host: str = SERVE_HOST, port: int = SERVE_PORT,
                 max_batch: int = SERVE_MAX_BATCH, batch_window_s: float = 0.02,
                 default_max_tokens: int = SERVE_MAX_TOKENS,
                 max_tokens_cap: int = 2048) -> None:
        self.llm, self.served_model = llm, served_model
        self.max_batch, self.batch_window_s = max(1, int(max_batch)), float(batch_window_s)
        self.default_max_tokens, self.max_tokens_cap = int(default_max_tokens), int(max_tokens_cap)
        self.jobs: queue.Queue[_Job | None] = queue.Queue()
        self.batches = 0
        self.httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self.httpd.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.httpd.server_address[:2]
        return str(host), int(port)

    @property
    def base_url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}/v1"

    # -- batching worker --------------------------------------------------------------------------------
    def _collect(self, first: _Job) -> list[_Job]:
        jobs, deadline = [first], time.monotonic() + self.batch_window_s
        while len(jobs) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                job = self.jobs.get(timeout=remaining) if remaining > 0 else self.jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:  # shutting down: finish this batch, then stop
                self.jobs.put(None)
                break
            jobs.append(job)
        return jobs

    def _run_batch(self, jobs: list[_Job]) -> None:
        try:
            prompts = [self.llm.encode(j.messages) for j in jobs]
            outs, _ = self.llm.generate_ids(prompts, max_new_tokens=[j.max_new_tokens for j in jobs])
            tok = self.llm.tokenizer
            for job, prompt, out in zip(jobs, prompts, outs):
                job.text = tok.decode(out, skip_special_tokens=True)
                job.prompt_tokens, job.completion_tokens = len(prompt), len(out)
                job.finish_reason = "length" if len(out) >= job.max_new_tokens else "stop"
        except Exception as exc:  # reported to every waiting request as a 500
            for job in jobs:
                job.error = exc
        finally:
            self.batches += 1
            for job in jobs:
                job.done.set()

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            self._run_batch(self._collect(job))

    def submit(self, job: _Job, timeout: float | None = None) -> _Job:
        self.jobs.put(job)
        if not job.done.wait(timeout):
            raise RequestError("generation timed out", 504, "timeout")
        return job

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> ChatServer:
        for target in (self._work, self.httpd.serve_forever):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def serve_forever(self) -> None:
        worker = threading.Thread(target=self._work, daemon=True)
        worker.start()
        try:
            self.httpd.serve_forever()
        finally:
            self.jobs.put(None)
            self.httpd.server_close()

    def shutdown(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.jobs.put(None)
        for t in self._threads:
            t.join(timeout=10)


def _handler_for(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "clinrag-serve"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: one line per request is noise here
            pass

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, exc: RequestError) -> None:
            self._send(exc.status, {"error": {"message": str(exc), "type": exc.code, "code": exc.status}})

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path in ("/v1/models", "/models"):
                self._send(200, {"object": "list", "data": [{"id": server.served_model, "object": "model",
                                                             "created": 0, "owned_by": "clinrag"}]})
            elif path == "/health":
                self._send(200, {"status": "ok"})
            else:
                self._error(RequestError(f"no route GET {path}", 404, "not_found"))

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            try:
                if path not in ("/v1/chat/completions", "/chat/completions"):
                    raise RequestError(f"no route POST {path}", 404, "not_found")
                length = int(self.headers.get("Content-Length") or 0)
                if length <= 0 or length > MAX_BODY_BYTES:
                    raise RequestError(f"body must be 1..{MAX_BODY_BYTES} bytes of JSON", 413 if length else 400)
                try:
                    body = json.loads(self.rfile.read(length).decode("utf-8"))
                except (ValueError, UnicodeDecodeError) as exc:
                    raise RequestError(f"body is not valid JSON: {exc}") from exc
                job = server.submit(parse_chat_request(body, served_model=server.served_model,
                                                       default_max_tokens=server.default_max_tokens,
                                                       max_tokens_cap=server.max_tokens_cap))
            except RequestError as exc:
                self._error(exc)
                return
            if job.error is not None:
                self._error(RequestError(f"generation failed: {job.error}", 500, "server_error"))
                return
            self._send(HTTPStatus.OK, {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
                "model": server.served_model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": job.text},
                             "finish_reason": job.finish_reason}],
                "usage": {"prompt_tokens": job.prompt_tokens, "completion_tokens": job.completion_tokens,
                          "total_tokens": job.prompt_tokens + job.completion_tokens},
            })

    return Handler
