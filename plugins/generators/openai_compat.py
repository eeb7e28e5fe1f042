"""``openai``: any OpenAI-compatible chat endpoint (vLLM, TGI, llama.cpp server, ``clinrag serve``).

This is how answering scales out: the model runs on a server (GPU, several replicas behind a load
balancer), and clinrag sends every sub-question of a case **concurrently**, so a batching server (vLLM,
``clinrag serve``) decodes them together and can reuse the shared scenario prefix. Requests are greedy
(``temperature: 0``). Only the standard library is used (``urllib``), so no client package is required.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from clinrag.core.defaults import MAX_NEW_TOKENS, SERVER_BASE_URL
from clinrag.core.errors import ClinragError, ModelLoadError
from clinrag.core.types import Generation, Usage

from .base import Message
from .llm import LLMGenerator


class ServerError(ClinragError):
    """The chat server answered with an error or could not be reached."""


def normalise_base_url(base_url: str) -> str:
    """``http://host:8000`` and ``http://host:8000/v1/`` both become ``http://host:8000/v1``."""
    url = base_url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ClinragError(f"--base-url {base_url!r} must start with http:// or https://")
    return url if url.endswith("/v1") or "/v1/" in url else url + "/v1"


class OpenAIChatLLM:
    """A :class:`~clinrag.plugins.generators.base.ChatLLM` over ``POST {base_url}/chat/completions``."""

    def __init__(self, base_url: str = SERVER_BASE_URL, model: str | None = None, *,
                 api_key: str | None = None, timeout: float = 120.0, max_new_tokens: int = MAX_NEW_TOKENS,
                 max_concurrency: int = 8, retries: int = 2) -> None:
        self.base_url = normalise_base_url(base_url)
        self._model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "EMPTY")
        self.timeout, self.max_new_tokens = float(timeout), int(max_new_tokens)
        self.max_concurrency, self.retries = max(1, int(max_concurrency)), max(0, int(retries))

    # -- HTTP -------------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        data = json.dumps(body).encode("utf-8") if body is not None else None
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.api_key}"}
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", "replace")[:300]
                try:
                    detail = json.loads(detail).get("error", {}).get("message", detail)
                except (ValueError, AttributeError):
                    pass
                if exc.code < 500:  # the request itself is wrong: retrying will not help
                    raise ServerError(f"{method} {url}: HTTP {exc.code}: {detail}") from exc
                last = ServerError(f"{method} {url}: HTTP {exc.code}: {detail}")
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                last = ServerError(f"cannot reach the chat server at {self.base_url} ({reason}); is it running? "
                                   f"(start one with `clinrag serve --model ...` or vLLM)")
            if attempt < self.retries:
                time.sleep(0.5 * 2 ** attempt)
        assert last is not None
        raise last

    @property
    def model(self) -> str:
        """The model name sent with each request; when not given, the server's first listed model."""
        if self._model is None:
            data = self._request("GET", "/models").get("data") or []
            if not data:
                raise ModelLoadError(f"the chat server at {self.base_url} lists no models; pass --model")
            self._model = str(data[0]["id"])
        return self._model

    # -- chat -------------------------------------------------------------------------------------------
    def _one(self, messages: Sequence[Message], max_new_tokens: int) -> Generation:
        start = time.perf_counter()
        body = {"model": self.model, "messages": list(messages), "max_tokens": max_new_tokens,
                "temperature": 0, "n": 1, "stream": False}
        out = self._request("POST", "/chat/completions", body)
        try:
            text = out["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise ServerError(f"unexpected reply from {self.base_url}/chat/completions: {str(out)[:200]}") from exc
        usage = out.get("usage") or {}
        return Generation(text, [], Usage(llm_calls=1, prompt_tokens=int(usage.get("prompt_tokens", 0)),
                                          completion_tokens=int(usage.get("completion_tokens", 0)),
                                          seconds=time.perf_counter() - start))

    def chat(self, conversations: Sequence[Sequence[Message]], *, max_new_tokens: int | None = None) -> list[Generation]:
        """All conversations in flight at once (up to ``max_concurrency``): the server batches them."""
        if not conversations:
            return []
        n_new = int(max_new_tokens or self.max_new_tokens)
        _ = self.model  # resolve once, before the threads start
        start = time.perf_counter()
        if len(conversations) == 1:
            gens = [self._one(conversations[0], n_new)]
        else:
            with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(conversations))) as pool:
                gens = list(pool.map(lambda c: self._one(c, n_new), conversations))
        # Requests overlap: report the wall time, split evenly, so summed usage is the real elapsed time.
        wall = time.perf_counter() - start
        for g in gens:
            g.usage.seconds = wall / len(gens)
        return gens


class OpenAIGenerator(LLMGenerator):
    name: ClassVar[str] = "openai"
    description: ClassVar[str] = ("Any OpenAI-compatible chat server (vLLM, TGI, llama.cpp, `clinrag serve`) by "
                                  "--base-url; sub-questions are sent concurrently so the server batches them.")

    def __init__(self, base_url: str = SERVER_BASE_URL, model: str | None = None, *,
                 api_key: str | None = None, timeout: float = 120.0, max_new_tokens: int = MAX_NEW_TOKENS,
                 summary_max_new_tokens: int | None = None, max_concurrency: int = 8, retries: int = 2) -> None:
        super().__init__(max_new_tokens=max_new_tokens, summary_max_new_tokens=summary_max_new_tokens)
        self._llm = OpenAIChatLLM(base_url, model, api_key=api_key, timeout=timeout, max_new_tokens=max_new_tokens,
                                  max_concurrency=max_concurrency, retries=retries)

    @property
    def llm(self) -> OpenAIChatLLM:
        return self._llm
