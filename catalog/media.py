"""Serve uploaded media with HTTP Range support, for development and tests.

`django.views.static.serve` answers every request with the whole file and no
`Accept-Ranges`, so browsers cannot seek an HTML5 <video> (Chromium restarts from 0).
This view answers `Range: bytes=...` with 206 Partial Content. In production a web
server or object store serves MEDIA_URL instead.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils._os import safe_join
from django.utils.http import http_date
from django.views.decorators.http import require_safe

CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """Parse one `bytes=a-b`, `bytes=a-` or `bytes=-n` range into inclusive (first, last).

    Returns None when the header is absent or not a single byte range (serve the whole
    file), and raises ValueError when the range cannot be satisfied (416).
    """
    match = _RANGE.match(header.strip()) if header else None
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":  # the last n bytes
        length = int(last)
        if length == 0 or size == 0:
            raise ValueError("empty suffix range")
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise ValueError(f"range {header!r} outside a file of {size} bytes")
    return start, end


def _chunks(path: Path, start: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(start)
        while length > 0:
            block = handle.read(min(CHUNK, length))
            if not block:
                return
            length -= len(block)
            yield block


@require_safe
def serve_media(request: HttpRequest, path: str) -> HttpResponse:
    """Return a file under MEDIA_ROOT, honouring a single byte range."""
    try:
        full = Path(safe_join(settings.MEDIA_ROOT, path))
    except SuspiciousFileOperation:  # escapes MEDIA_ROOT
        raise Http404("No such file.") from None
    if not full.is_file():
        raise Http404("No such file.")
    stat = full.stat()
    content_type = mimetypes.guess_type(full.name)[0] or "application/octet-stream"
    try:
        wanted = byte_range(request.headers.get("Range", ""), stat.st_size)
    except ValueError:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{stat.st_size}"
        return response
    if wanted is None:
        response = FileResponse(full.open("rb"), content_type=content_type)
    else:
        first, last = wanted
        response = StreamingHttpResponse(_chunks(full, first, last - first + 1),
                                         status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {first}-{last}/{stat.st_size}"
        response["Content-Length"] = str(last - first + 1)
    response["Accept-Ranges"] = "bytes"
    response["Last-Modified"] = http_date(stat.st_mtime)
    return response
