"""Errors the pipeline raises: permanent ones fail the video, transient ones are retried."""


class PipelineError(Exception):
    """Base class; the message is shown to editors, so it says what to do."""


class PermanentError(PipelineError):
    """The input itself is unusable; retrying cannot help."""


class TransientError(PipelineError):
    """A service or resource is temporarily unavailable; retry later."""
