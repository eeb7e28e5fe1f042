"""Answer generators: an LLM (transformers, OpenAI-compatible server) or the extractive no-LLM answerer."""

from .base import (
    AnswerRequest,
    ChatLLM,
    Generator,
    generators,
    get_generator,
    list_generators,
)

__all__ = ["AnswerRequest", "ChatLLM", "Generator", "generators", "get_generator", "list_generators"]
