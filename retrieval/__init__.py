"""Hybrid retrieval: backends, fusion and the query service."""
