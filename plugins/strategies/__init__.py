"""Query-translation strategies: turn a case into sub-questions and the queries that retrieve for them."""

from .base import (
    LLMBudget,
    QueryTranslator,
    Translation,
    get_strategy,
    list_strategies,
    strategies,
)

__all__ = ["LLMBudget", "QueryTranslator", "Translation", "get_strategy", "list_strategies", "strategies"]
