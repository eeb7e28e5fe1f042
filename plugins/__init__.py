"""Plugin contracts and registries: query-translation strategies and answer generators.

Both are discovered through entry-point groups (``clinrag.strategies``, ``clinrag.generators``); the
built-ins are registered in clinrag's own ``pyproject.toml`` exactly as a third-party package would.
"""
