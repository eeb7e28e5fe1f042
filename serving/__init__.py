"""Servers: the OpenAI-compatible chat endpoint (``clinrag serve``). The top layer, beside the CLI."""
