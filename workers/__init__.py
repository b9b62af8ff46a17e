"""Ingestion: Celery tasks (tasks.py) around the processing pipeline (pipeline/)."""
