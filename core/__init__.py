"""clinrag: retrieval-augmented answering of multi-question clinical cases.

Heavy dependencies (torch, transformers, faiss) are imported lazily by the modules that need them, so
``import clinrag`` and ``clinrag --help`` stay fast.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
