"""``clinrag serve``: expose an ``hf`` model as an OpenAI-compatible chat endpoint (``/v1/chat/completions``).

For anything beyond a small local server (tools, logprobs, n>1, GPU throughput) use vLLM or llama.cpp's server:
the ``openai`` generator talks to them the same way."""

from __future__ import annotations

import typer
from clinrag.core import defaults


def serve(
    model: str = typer.Option(defaults.DEFAULT_MODEL, "--model", help="Hub id, local folder or .gguf file."),
    adapter: str = typer.Option(None, "--adapter", help="A PEFT adapter folder to apply."),
    host: str = typer.Option(defaults.SERVE_HOST, "--host", help="Interface to bind (127.0.0.1: this machine only)."),
    port: int = typer.Option(defaults.SERVE_PORT, "--port", min=0, max=65535, help="TCP port (0: any free port)."),
    served_model_name: str = typer.Option(None, "--served-model-name",
                                          help="Name clients send as `model` (default: the --model value)."),
    max_new_tokens: int = typer.Option(defaults.SERVE_MAX_TOKENS, "--max-new-tokens", min=1,
                                       help="Default max_tokens per request."),
    max_batch: int = typer.Option(defaults.SERVE_MAX_BATCH, "--max-batch", min=1,
                                  help="Most requests decoded together."),
    read_timeout: float = typer.Option(defaults.SERVE_READ_TIMEOUT_S, "--read-timeout", min=0.1,
                                       help="Seconds to wait on a client's socket before giving up on it."),
    device: str = typer.Option(None, "--device", help="cpu, cuda, cuda:1 … (default: cuda if available)."),
    dtype: str = typer.Option(None, "--dtype", help="auto, float32, bfloat16, float16 or bfloat16-weights."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Run model code from the repo."),
) -> None:
    """Serve a model over the OpenAI chat API (streaming, stop, sampling), e.g. for `--generator openai`."""
    from clinrag.plugins.generators.hf import HFChatLLM
    from clinrag.serving.openai_server import ChatServer

    llm = HFChatLLM(model, adapter=adapter, device=device, dtype=dtype, trust_remote_code=trust_remote_code,
                    max_new_tokens=max_new_tokens)
    _ = llm.model  # load now: a bad --model fails before the port opens
    try:
        server = ChatServer(llm, served_model=served_model_name or model, host=host, port=port,
                            max_batch=max_batch, default_max_tokens=max_new_tokens, read_timeout_s=read_timeout)
    except OSError as exc:
        from clinrag.core.errors import ClinragError

        raise ClinragError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    typer.echo(f"serving {server.served_model!r} at {server.base_url} (Ctrl-C to stop)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
