"""Evaluation: metrics, the evaluate command and its reports.

It builds throwaway catalogs through ``workers/`` and queries through
``retrieval/search.py``, so it sits above both; nothing in ``retrieval/`` imports it.
"""
