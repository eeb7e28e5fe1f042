"""An OpenAI-compatible chat server over an :class:`~clinrag.plugins.generators.hf.HFChatLLM` (``clinrag serve``).

Endpoints: ``GET /v1/models``, ``POST /v1/chat/completions`` (``n=1``; streamed as server-sent events with
``stream: true``) and ``GET /health``. Standard library only (``http.server.ThreadingHTTPServer``): each
connection gets a thread that parks its request on a queue; one worker thread drains the queue into
**micro-batches** (requests that arrive within ``batch_window_s`` of each other, up to ``max_batch``) and decodes
each batch with one :func:`~clinrag.plugins.generators.decoding.generate_batch` call, so the concurrent
sub-question requests of a case share one decode and their common system + scenario prefix is computed once.

Decoding is greedy at ``temperature`` 0 (also when it is omitted: unlike OpenAI's default of 1, so answers are
reproducible unless a client asks otherwise); above 0 each request samples with its own ``top_p`` and ``seed``.
``stop`` sequences end a reply and are not part of it. Anything beyond that (tools, logprobs, ``n>1``, high
throughput on a GPU) belongs to vLLM or llama.cpp's server.

Malformed requests get a JSON 4xx in OpenAI's error shape and never a traceback; after an error whose request
body was not read (or could not be), the server drains that body or closes the connection, so the next request
on a keep-alive connection starts clean. Socket reads time out after ``read_timeout_s``.
It binds 127.0.0.1 by default; it has no authentication, so expose it only behind something that does.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from clinrag.core.defaults import (
    SERVE_HOST,
    SERVE_MAX_BATCH,
    SERVE_MAX_TOKENS,
    SERVE_PORT,
    SERVE_READ_TIMEOUT_S,
)

from .chat_request import DONE, ChatJob, RequestError, parse_chat_request

__all__ = ["ChatJob", "ChatServer", "RequestError", "parse_chat_request"]

MAX_BODY_BYTES = 8 * 1024 * 1024


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line on stderr instead of socketserver's traceback; a client hanging up is not worth a line."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):
            print(f"clinrag serve: request from {client_address[0]} failed: {type(exc).__name__}: {exc}",
                  file=sys.stderr)


class ChatServer:
    """Owns the HTTP server and the batching worker. ``start()`` runs both in background threads."""

    def __init__(self, llm: Any, *, served_model: str, host: str = SERVE_HOST, port: int = SERVE_PORT,
                 max_batch: int = SERVE_MAX_BATCH, batch_window_s: float = 0.02,
                 default_max_tokens: int = SERVE_MAX_TOKENS, max_tokens_cap: int = 2048,
                 read_timeout_s: float = SERVE_READ_TIMEOUT_S) -> None:
        self.llm, self.served_model = llm, served_model
        self.max_batch, self.batch_window_s = max(1, int(max_batch)), float(batch_window_s)
        self.default_max_tokens, self.max_tokens_cap = int(default_max_tokens), int(max_tokens_cap)
        self.read_timeout_s = float(read_timeout_s)
        self.jobs: queue.Queue[ChatJob | None] = queue.Queue()
        self.batches = 0
        self.httpd = _HTTPServer((host, port), _handler_for(self))
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
    def _collect(self, first: ChatJob) -> list[ChatJob]:
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

    def prepare(self, job: ChatJob) -> ChatJob:
        """Tokenise the job's conversation (in the request's thread, so a bad one is a 400 before any streaming)."""
        try:
            job.prompt = self.llm.encode(job.messages)
        except Exception as exc:  # e.g. a chat template that allows no system message
            raise RequestError(f"messages do not fit the model's chat template: {exc}") from None
        return job

    def _run_batch(self, jobs: list[ChatJob]) -> None:
        from clinrag.plugins.generators.sampling import make_sampler
        from clinrag.plugins.generators.text_stream import TextStream

        try:
            tok = self.llm.tokenizer

            def decode(ids: list[int]) -> str:
                return tok.decode(ids, skip_special_tokens=True)

            # Text is followed token by token only where someone needs it: a stream, or stop sequences to find.
            streams = [TextStream(decode, j.stop) if j.stream or j.stop else None for j in jobs]

            def on_token(row: int, token: int) -> bool:
                job, stream = jobs[row], streams[row]
                if stream is not None:
                    delta = stream.push(token)
                    if delta and job.stream:
                        job.events.put(delta)
                    return stream.stopped or job.cancelled
                return job.cancelled

            outs, _ = self.llm.generate_ids([j.prompt for j in jobs], max_new_tokens=[j.max_new_tokens for j in jobs],
                                            samplers=[make_sampler(j.temperature, j.top_p, j.seed) for j in jobs],
                                            on_token=on_token)
            for job, stream, out in zip(jobs, streams, outs):
                stopped = stream is not None and stream.stopped
                if stream is not None:
                    tail = stream.finish()
                    if tail and job.stream:
                        job.events.put(tail)
                job.text = stream.text if stream is not None else decode(out)
                job.prompt_tokens, job.completion_tokens = len(job.prompt), len(out)
                # "length" only when the limit cut the reply; EOS and stop sequences both end it naturally.
                job.finish_reason = "stop" if stopped or len(out) < job.max_new_tokens else "length"
        except Exception as exc:  # reported to every waiting request as a 500
            for job in jobs:
                job.error = exc
        finally:
            self.batches += 1
            for job in jobs:
                job.events.put(DONE)
                job.done.set()

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            self._run_batch(self._collect(job))

    def submit(self, job: ChatJob, timeout: float | None = None) -> ChatJob:
        self.jobs.put(job)
        if not job.done.wait(timeout):
            job.cancelled = True
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


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def _usage(job: ChatJob) -> dict[str, int]:
    return {"prompt_tokens": job.prompt_tokens, "completion_tokens": job.completion_tokens,
            "total_tokens": job.prompt_tokens + job.completion_tokens}


def _handler_for(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    from .http_handler import JSONRequestHandler

    class Handler(JSONRequestHandler):
        timeout = server.read_timeout_s  # every socket read and write; a stalled client cannot hold a thread
        max_body_bytes = MAX_BODY_BYTES

        def do_GET(self) -> None:
            path = self.route()
            if path in ("/v1/models", "/models"):
                self.send_json(200, {"object": "list", "data": [{"id": server.served_model, "object": "model",
                                                                 "created": 0, "owned_by": "clinrag"}]})
            elif path == "/health":
                self.send_json(200, {"status": "ok"})
            else:
                self.send_request_error(RequestError(f"no route GET {path}", 404, "not_found"))

        def do_POST(self) -> None:
            path = self.route()
            try:
                if path not in ("/v1/chat/completions", "/chat/completions"):
                    raise RequestError(f"no route POST {path}", 404, "not_found")
                job = server.prepare(parse_chat_request(self.read_json(), served_model=server.served_model,
                                                        default_max_tokens=server.default_max_tokens,
                                                        max_tokens_cap=server.max_tokens_cap))
                if job.stream:
                    server.jobs.put(job)
                    self._stream(job)
                    return
                server.submit(job)
                if job.error is not None:
                    raise job.error if isinstance(job.error, RequestError) else \
                        RequestError(f"generation failed: {job.error}", 500, "server_error")
            except RequestError as exc:
                self.send_request_error(exc)
                return
            except (ConnectionError, TimeoutError):
                raise  # the client is gone: nothing to answer
            except Exception as exc:  # a bug: one line on stderr and a 500, never a traceback
                print(f"clinrag serve: {type(exc).__name__}: {exc}", file=sys.stderr)
                self.send_request_error(RequestError(f"internal error: {type(exc).__name__}", 500, "server_error"))
                return
            self.send_json(200, {
                "id": _completion_id(), "object": "chat.completion", "created": int(time.time()),
                "model": server.served_model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": job.text},
                             "logprobs": None, "finish_reason": job.finish_reason}],
                "usage": _usage(job),
            })

        def _stream(self, job: ChatJob) -> None:
            """``chat.completion.chunk`` events: the role, each piece of text, the finish reason, the usage
            (with ``stream_options.include_usage``), then ``data: [DONE]``."""
            head = {"id": _completion_id(), "object": "chat.completion.chunk", "created": int(time.time()),
                    "model": server.served_model}

            def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
                out = {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
                return {**out, "usage": None} if job.include_usage else out

            try:
                self.start_event_stream()
                self.send_event(chunk({"role": "assistant", "content": ""}))
                while (item := job.events.get()) is not DONE:
                    self.send_event(chunk({"content": item}))
                if job.error is not None:
                    err = job.error if isinstance(job.error, RequestError) else \
                        RequestError(f"generation failed: {job.error}", 500, "server_error")
                    self.send_event({"error": {"message": str(err), "type": err.code, "code": err.status}})
                else:
                    self.send_event(chunk({}, job.finish_reason))
                    if job.include_usage:
                        self.send_event({**head, "choices": [], "usage": _usage(job)})
                self.end_event_stream()
            except (ConnectionError, TimeoutError):
                job.cancelled = True  # the worker drops the row at its next token
                self.close_connection = True

    return Handler
