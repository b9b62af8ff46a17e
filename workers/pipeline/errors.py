"""Errors the pipeline raises: permanent ones fail the video, transient ones are retried.

ffmpeg and ffprobe failures arrive as ``ffmpeg.Error`` (ffmpeg-python) carrying the tool's
stderr; `ffmpeg_detail` turns that into the short clause editors see in a message.
"""

from __future__ import annotations

import re
from pathlib import Path

import ffmpeg

#: Any other absolute path in a tool's message (scratch files, outputs): cut to its name.
ABSOLUTE_PATH = re.compile(r"(^|[\s'\"(=])(/[^\s'\":,()]+)")


class PipelineError(Exception):
    """Base class; the message is shown to editors, so it says what to do."""


class PermanentError(PipelineError):
    """The input itself is unusable; retrying cannot help."""


class TransientError(PipelineError):
    """A service or resource is temporarily unavailable; retry later."""


def tool_detail(stderr: str, *paths: Path) -> str:
    """Return the last line of a tool's stderr with server paths cut to the file's name.

    ffmpeg and ffprobe start many messages with the input's path ("/srv/.../x.mp4: Invalid
    data found"); editors see these messages and must not see the storage layout.
    """
    detail = (stderr.strip().splitlines() or ["unknown error"])[-1].strip()
    for path in paths:
        for form in sorted({str(path), str(path.resolve()), str(path.absolute())},
                           key=len, reverse=True):
            if form and form != path.name:
                detail = detail.replace(form, path.name)
    detail = ABSOLUTE_PATH.sub(lambda m: m.group(1) + Path(m.group(2)).name, detail)
    return detail or "unknown error"


def ffmpeg_detail(error: ffmpeg.Error, *paths: Path) -> str:
    """Return the editor-facing clause of an ffmpeg-python error (its stderr's last line)."""
    stderr = error.stderr or b""
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else str(stderr)
    return tool_detail(text, *paths)
