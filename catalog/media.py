"""Serve uploaded media with HTTP Range support, for development and tests.

`django.views.static.serve` answers every request with the whole file and no
`Accept-Ranges`, so browsers cannot seek an HTML5 <video> (Chromium restarts from 0).
This view answers `Range: bytes=...` with 206 Partial Content. In production a web
server or object store serves MEDIA_URL instead.

Only files of the catalog are served: a video's source (videos/%Y/%m/...) or one of its
keyframe thumbnails (keyframes/%Y/%m/...), when the video is published and ready, or to
staff (`request.user.is_staff`). A file is looked up by its path after resolving symbolic
links, and must be a regular file inside MEDIA_ROOT; anything else is a 404, so the view
never tells whether an unpublished file exists.
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

from .models import Keyframe, Video, VideoStatus

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


def _is_staff(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)


def _may_see(request: HttpRequest, name: str) -> bool:
    """True when `name` (relative to MEDIA_ROOT) is a file of a video the caller may see."""
    videos = Video.objects.all()
    if not _is_staff(request):
        videos = videos.filter(published=True, status=VideoStatus.READY)
    if name.startswith("videos/"):
        return videos.filter(source=name).exists()
    if name.startswith("keyframes/"):
        return Keyframe.objects.filter(image=name, video__in=videos).exists()
    return False


def _catalog_file(request: HttpRequest, path: str) -> Path:
    """Return the file a media URL names, or raise Http404 unless the caller may see it."""
    root = Path(settings.MEDIA_ROOT).resolve()
    try:
        full = Path(safe_join(root, path)).resolve()
    except (SuspiciousFileOperation, ValueError, OSError):  # escapes MEDIA_ROOT, NUL bytes
        raise Http404("No such file.") from None
    if not full.is_relative_to(root) or not full.is_file():  # a link out, a folder, nothing
        raise Http404("No such file.")
    if not _may_see(request, full.relative_to(root).as_posix()):
        raise Http404("No such file.")
    return full


@require_safe
def serve_media(request: HttpRequest, path: str) -> HttpResponse:
    """Return a catalog file under MEDIA_ROOT, honouring a single byte range."""
    full = _catalog_file(request, path)
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
