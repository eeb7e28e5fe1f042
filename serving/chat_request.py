"""A ``/v1/chat/completions`` request body, validated into a :class:`ChatJob` (or one :class:`RequestError`).

What the server honours: ``messages`` (system/developer, user, assistant; string or text-part content),
``max_tokens`` / ``max_completion_tokens``, ``stream`` (+ ``stream_options.include_usage``), ``stop`` (a string or
up to four), ``temperature``, ``top_p``, ``seed``, ``n=1``. A request that asks for something it does not do
(tools, logprobs, JSON mode, penalties, ``n>1``) is refused with a 400 naming the field rather than answered as
if it had been honoured; other unknown fields are ignored, as OpenAI-compatible servers do.
"""

from __future__ import annotations

import math
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
MAX_STOP_SEQUENCES = 4  # OpenAI's limit
# Fields that change what the client gets back; accepted only at their "off" value.
_UNSUPPORTED = {
    "tools": "tool calls", "functions": "function calls", "logprobs": "logprobs", "top_logprobs": "logprobs",
    "logit_bias": "logit_bias", "presence_penalty": "presence_penalty", "frequency_penalty": "frequency_penalty",
    "audio": "audio output", "prediction": "predicted outputs",
}
BEYOND = "use vLLM or llama.cpp's server for that"


class RequestError(ValueError):
    """A request the server refuses: HTTP ``status`` and OpenAI's error ``code`` (``type``)."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.code = status, code


DONE = object()  # the last item a streaming job's events queue receives


@dataclass
class ChatJob:
    """One chat completion, filled in by the server's decoding worker."""

    messages: list[dict[str, str]]
    max_new_tokens: int
    stream: bool = False
    include_usage: bool = False
    stop: tuple[str, ...] = ()
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    prompt: list[int] = field(default_factory=list)  # token ids, from ChatServer.prepare
    # filled in by the worker
    done: threading.Event = field(default_factory=threading.Event)
    events: queue.Queue[Any] = field(default_factory=queue.Queue)  # text deltas, then DONE (streaming only)
    cancelled: bool = False  # the client went away: the worker drops the row at its next token
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    error: BaseException | None = None


def _content_text(content: Any, where: str) -> str:
    """``"text"`` or the list-of-parts form ``[{"type": "text", "text": "..."}]``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text"
                                         and isinstance(p.get("text"), str) for p in content):
        return "".join(p["text"] for p in content)
    raise RequestError(f"{where}.content must be a string or a list of text parts")


def _number(body: dict[str, Any], name: str, low: float, high: float, default: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise RequestError(f"{name} must be a number from {low:g} to {high:g}")
    return float(value)


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise RequestError("stop must be a non-empty string or a list of non-empty strings")
    if len(stops) > MAX_STOP_SEQUENCES:
        raise RequestError(f"stop takes at most {MAX_STOP_SEQUENCES} sequences")
    return tuple(stops)


def _refuse_unsupported(body: dict[str, Any]) -> None:
    for name, what in _UNSUPPORTED.items():
        value = body.get(name)
        if value not in (None, False, 0, [], {}):
            raise RequestError(f"{name}: {what} are not supported by clinrag serve ({BEYOND})")
    fmt = body.get("response_format")
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") != "text"):
        raise RequestError(f"response_format: only type 'text' is supported by clinrag serve ({BEYOND})")


def parse_chat_request(body: Any, *, served_model: str, default_max_tokens: int, max_tokens_cap: int) -> ChatJob:
    """Validate a ``/v1/chat/completions`` body into a job (errors name the offending field)."""
    if not isinstance(body, dict):
        raise RequestError("request body must be a JSON object")
    model = body.get("model")
    if model not in (None, "", served_model):
        raise RequestError(f"model {model!r} is not served here (serving {served_model!r})", 404, "model_not_found")
    if body.get("n") not in (None, 1):
        raise RequestError(f"n: only n=1 is supported by clinrag serve ({BEYOND})")
    _refuse_unsupported(body)
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise RequestError("messages must be a non-empty list")
    messages = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            raise RequestError(f"messages[{i}].role must be one of {sorted(_ROLES)}")
        messages.append({"role": _ROLES[m["role"]], "content": _content_text(m.get("content"), f"messages[{i}]")})
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is None:
        limit = default_max_tokens
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise RequestError("max_tokens must be a positive integer")
    stream = body.get("stream")
    if stream not in (None, True, False):
        raise RequestError("stream must be true or false")
    options = body.get("stream_options")
    if options is not None and (not isinstance(options, dict) or options.get("include_usage") not in (None, True, False)):
        raise RequestError("stream_options must be an object like {\"include_usage\": true}")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise RequestError("seed must be an integer")
    return ChatJob(messages, min(limit, max_tokens_cap), stream=bool(stream),
                   include_usage=bool(options and options.get("include_usage")), stop=_stop(body.get("stop")),
                   temperature=_number(body, "temperature", 0, 2, 0.0), top_p=_number(body, "top_p", 0, 1, 1.0),
                   seed=None if seed is None else seed % 2**63)
