"""The LangGraph agent: translate a case → retrieve per sub-question → answer → compose."""
