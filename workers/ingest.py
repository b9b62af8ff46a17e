"""Register media files in the catalog (used by the `ingest` command)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.core.files import File
from django.db import transaction

from catalog.models import Video, VideoStatus

from .recover import requeue_if_stuck
from .tasks import enqueue_video

MEDIA_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts",
                  ".m4a", ".mp3", ".wav", ".ogg", ".opus", ".flac"}


@dataclass(frozen=True)
class Registration:
    """What happened to one path."""

    path: Path
    video: Video | None
    action: str  # "created", "skipped", "retried", "missing"
    message: str = ""


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def expand(paths: list[Path]) -> Iterator[Path]:
    """Yield named files as given, and media files found under named folders (sorted)."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*")
                              if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)
        else:
            yield path


def register(path: Path, metadata: dict | None = None) -> Registration:
    """Add a file to the catalog (processing starts on commit), unless it is already there."""
    if not path.is_file():
        return Registration(path, None, "missing", f"{path}: no such file.")
    digest = sha256_of(path)
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
    return Registration(path, _create(path, digest, metadata or {}), "created")


def _create(path: Path, digest: str, metadata: dict) -> Video:
    video = Video(
        title=metadata.get("title") or path.stem.replace("_", " ").replace("-", " ").strip(),
        description=metadata.get("description", ""), tags=list(metadata.get("tags", [])),
        language=metadata.get("language", "en"), original_name=path.name, sha256=digest,
        size_bytes=path.stat().st_size,
    )
    with transaction.atomic(), path.open("rb") as handle:
        video.source.save(path.name, File(handle), save=False)
        video.save()
    video.refresh_from_db()
    return video
