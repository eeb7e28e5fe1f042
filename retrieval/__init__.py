"""Passage ingestion, embedding, FAISS/BM25 indexes and the retriever the agent calls."""
