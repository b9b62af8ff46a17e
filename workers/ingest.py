"""Register media files in the catalog (used by the `ingest` command).

Only regular files are ingested. Paths are resolved first: a symbolic link (named directly,
found inside a folder, or anywhere along a named path) is followed only when its target lies
under one of REELSEARCH["INGEST_ROOTS"] (env REELSEARCH_INGEST_ROOTS, comma separated); with
no roots configured every symbolic link is refused. Otherwise a link to /etc/passwd named
`x.mp4` would be copied into MEDIA_ROOT and served from there.

Messages name files by their name only, never by the server's absolute paths.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction

from catalog.models import Video, VideoStatus

from .recover import requeue_if_stuck
from .tasks import enqueue_video

MEDIA_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts",
                  ".m4a", ".mp3", ".wav", ".ogg", ".opus", ".flac"}
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class Registration:
    """What happened to one path."""

    path: Path
    video: Video | None
    action: str  # "created", "skipped", "retried", "missing", "refused"
    message: str = ""


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 of a file."""
    with path.open("rb") as handle:
        return _sha256_of_handle(handle)


def _sha256_of_handle(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1024 * 1024), b""):
        digest.update(block)
    return digest.hexdigest()


def ingest_roots() -> list[Path]:
    """Return the resolved folders that symbolic links may point into (may be empty)."""
    raw = settings.REELSEARCH.get("INGEST_ROOTS") or []
    if isinstance(raw, str):
        raw = raw.split(",")
    return [Path(str(root).strip()).expanduser().resolve() for root in raw if str(root).strip()]


def _under_roots(target: Path, roots: list[Path]) -> bool:
    return any(target == root or target.is_relative_to(root) for root in roots)


def _has_media_suffix(path: Path) -> bool:
    return path.suffix.lower() in MEDIA_SUFFIXES


def expand(paths: list[Path]) -> Iterator[Path]:
    """Yield named paths as given, and media entries found under named folders (sorted).

    Folders are walked without following symbolic links, except links to folders under the
    ingest roots. Everything with a media suffix is yielded, whatever it is (a link, a
    folder named `x.mp4`, a FIFO), so that `register` refuses it with a message rather than
    skipping it silently.
    """
    roots = ingest_roots()
    for path in paths:
        if path.is_dir() and not _has_media_suffix(path) and _symlink_allowed(path, roots):
            yield from sorted(_walk(path, roots, {path.resolve()}), key=str)
        else:
            yield path


def _symlink_allowed(path: Path, roots: list[Path]) -> bool:
    """True when no symbolic link is on the path, or the path resolves under the roots."""
    absolute = Path(os.path.abspath(path))
    resolved = absolute.resolve()
    return resolved == absolute or _under_roots(resolved, roots)


def _walk(folder: Path, roots: list[Path], seen: set[Path]) -> Iterator[Path]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        path = folder / entry.name
        try:
            if entry.is_symlink():
                target = path.resolve()
                if target.is_dir():
                    if not _under_roots(target, roots) or _has_media_suffix(path):
                        yield path  # refused (or a folder named like a file) by register
                    elif target not in seen:
                        seen.add(target)
                        yield from _walk(path, roots, seen)
                elif _has_media_suffix(path):
                    yield path
            elif entry.is_dir(follow_symlinks=False):
                if _has_media_suffix(path):
                    yield path  # register answers "is a folder"
                else:
                    yield from _walk(path, roots, seen)
            elif _has_media_suffix(path):
                yield path
        except OSError:
            if _has_media_suffix(path):
                yield path


def _refuse(path: Path, message: str) -> Registration:
    return Registration(path, None, "refused", f"{path.name}: {message}")


def _open_checked(path: Path) -> tuple[BinaryIO | None, Registration | None]:
    """Open a path to ingest, or say why it may not be ingested."""
    absolute = Path(os.path.abspath(path))
    if not os.path.lexists(absolute):
        return None, Registration(path, None, "missing", f"{path.name}: no such file.")
    roots = ingest_roots()
    resolved = absolute.resolve()
    if resolved != absolute and not _under_roots(resolved, roots):
        where = ("no REELSEARCH_INGEST_ROOTS are configured, so links are not followed"
                 if not roots else "its target is outside REELSEARCH_INGEST_ROOTS")
        return None, _refuse(path, f"is a symbolic link (or lies behind one) and {where}; "
                                   "refused. Name the file itself.")
    if not resolved.exists():
        return None, Registration(path, None, "missing",
                                  f"{path.name}: no such file (a broken symbolic link).")
    if resolved.is_dir():
        return None, _refuse(path, "is a folder, not a media file; refused. Name the files "
                                   "in it, or a folder whose name has no media suffix.")
    try:
        fd = os.open(resolved, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        return None, _refuse(path, f"cannot be opened ({exc.strerror or 'error'}).")
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        return None, _refuse(path, "is not a regular file (a device, FIFO or socket); refused.")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb"), None


def register(path: Path, metadata: dict | None = None) -> Registration:
    """Add a file to the catalog (processing starts on commit), unless it is already there."""
    handle, problem = _open_checked(path)
    if problem is not None:
        return problem
    with handle:
        digest = _sha256_of_handle(handle)
        existing = Video.objects.filter(sha256=digest).order_by("created_at").first()
        if existing is not None and existing.status != VideoStatus.FAILED:
            if (stuck := requeue_if_stuck(existing)) is not None:  # a dead worker's, say
                existing.refresh_from_db()
                return Registration(path, existing, "requeued",
                                    f"was stuck ({stuck.status}, no activity for "
                                    f"{stuck.idle_seconds:.0f} s); requeued from {stuck.stage}.")
            return Registration(path, existing, "skipped",
                                f"already in the catalog as {existing.title!r} ({existing.pk}).")
        if existing is not None:
            Video.objects.filter(pk=existing.pk).update(
                status=VideoStatus.PENDING, error="", stage="", progress=0.0)
            enqueue_video(str(existing.pk))
            existing.refresh_from_db()
            return Registration(path, existing, "retried", "was failed; processing it again.")
        handle.seek(0)
        video = _new_video(path, handle, digest, metadata or {})
        if (problem := _metadata_problem(path, video)) is not None:
            return problem
        return Registration(path, _create(video, path, handle), "created")


def _new_video(path: Path, handle: BinaryIO, digest: str, metadata: dict) -> Video:
    return Video(
        title=(metadata.get("title")
               or path.stem.replace("_", " ").replace("-", " ").strip() or path.name),
        description=metadata.get("description", ""), tags=list(metadata.get("tags", [])),
        language=metadata.get("language", "en"), original_name=path.name, sha256=digest,
        size_bytes=os.fstat(handle.fileno()).st_size,
    )


def _metadata_problem(path: Path, video: Video) -> Registration | None:
    """Say which metadata the catalog cannot store: too long, or with NUL characters (which
    PostgreSQL refuses; SQLite would keep them, and overlong values, silently)."""
    problems = []
    try:
        video.clean_fields(exclude=["id", "source"])
    except ValidationError as exc:
        problems += [f"{name}: {' '.join(messages)}" for name, messages
                     in exc.message_dict.items()]
    fields = {"title": video.title, "description": video.description,
              "language": video.language, "tags": " ".join(map(str, video.tags))}
    problems += [f"{name}: contains a NUL character (\\u0000)" for name, value
                 in fields.items() if "\x00" in str(value)]
    if not problems:
        return None
    return _refuse(path, f"its metadata cannot be stored ({'; '.join(problems)}); fix the "
                         "--metadata file and ingest it again.")


def _create(video: Video, path: Path, handle: BinaryIO) -> Video:
    with transaction.atomic():
        video.source.save(path.name, File(handle, name=path.name), save=False)
        video.save()
    video.refresh_from_db()
    return video
