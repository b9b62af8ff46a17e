"""The pipeline's stages. Each is idempotent: re-running it replaces what it made."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction

from catalog.models import Segment, SegmentKind, Video
from catalog.models import Transcript as StoredTranscript
from retrieval.backends import BackendUnavailable
from retrieval.encoders import TextEncoder, get_text_encoder
from retrieval.indexing import index_video

from . import concepts as concept_tags
from . import media
from .asr import WHISPER_LANGUAGES, Transcript, get_recognizer, whisper_language
from .chapters import ChapterSettings, Unit, make_chapters
from .clip import clip
from .concepts import concepts
from .errors import TransientError
from .frames import keyframes
from .ocr import ocr
from .segment import Chunk, chunk_words, metadata_text, sentence_units


@dataclass
class StageContext:
    """What a stage gets: the video row, its scratch directory and a progress callback."""

    video: Video
    progress: Callable[[float], None]

    @property
    def work_dir(self) -> Path:
        """Return (and create) the video's scratch directory."""
        path = Path(settings.REELSEARCH["WORK_DIR"]) / str(self.video.pk)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def update(self, **fields: object) -> None:
        """Save fields on the video row without touching the editor's fields."""
        Video.objects.filter(pk=self.video.pk).update(**fields)
        for name, value in fields.items():
            setattr(self.video, name, value)

    def merge(self, field: str, changes: dict | list) -> None:
        """Add entries to a JSON field of the row, keeping what the other branch added.

        The branches run at once, often in two processes: the row is re-read under a lock
        (FOR UPDATE; SQLite's IMMEDIATE transactions take the database's write lock), so
        neither overwrites the other's entries. A dict value of None removes that key.
        """
        with transaction.atomic():
            current = (Video.objects.select_for_update().values_list(field, flat=True)
                       .get(pk=self.video.pk))
            if isinstance(changes, dict):
                value = {key: item for key, item in {**(current or {}), **changes}.items()
                         if item is not None}
            else:
                value = [*(current or []), *(c for c in changes if c not in (current or []))]
            if value != current:
                Video.objects.filter(pk=self.video.pk).update(**{field: value})
        setattr(self.video, field, value)

    def notice(self, message: str) -> None:
        """Record a note an editor should see (not an error)."""
        self.merge("notices", [message])

    def record_model(self, role: str, label: str | None) -> None:
        """Record which model made this stage's output (None: no model made any)."""
        self.merge("model_versions", {role: label})


def probe(ctx: StageContext) -> None:
    """Read duration, size and streams with ffprobe."""
    found = media.probe(Path(ctx.video.source.path))
    ctx.update(duration=found.duration, width=found.width, height=found.height,
               has_video=found.has_video, has_audio=found.has_audio,
               size_bytes=found.size_bytes)
    if not found.has_audio:
        ctx.notice("No audio track: indexed from its metadata only.")
    if not found.has_video:
        ctx.notice("No video stream: indexed from its audio only.")


def audio(ctx: StageContext) -> None:
    """Extract 16 kHz mono audio for ASR, on the video's timeline (gaps filled with silence)."""
    if ctx.video.has_audio:
        warnings: list[str] = []
        media.extract_audio(Path(ctx.video.source.path), ctx.work_dir / "audio.wav",
                            duration=ctx.video.duration, warnings=warnings)
        for warning in warnings:
            ctx.notice(warning)


def asr(ctx: StageContext) -> None:
    """Transcribe speech with word timestamps and keep the transcript for the next stage."""
    if not ctx.video.has_audio:
        return
    wav = ctx.work_dir / "audio.wav"
    if not wav.exists():
        audio(ctx)
    transcript = get_recognizer().transcribe(wav, ctx.video.duration or 0.0, ctx.progress,
                                             language=ctx.video.language)
    partial = ctx.work_dir / "transcript.partial.json"  # a killed worker leaves no half file
    partial.write_text(json.dumps(transcript.to_dict()))
    partial.replace(ctx.work_dir / "transcript.json")
    ctx.record_model("asr", transcript.model)
    if not transcript.words:
        ctx.notice("No speech was recognised in the audio track.")
    _record_language(ctx, transcript)


def _record_language(ctx: StageContext, transcript: Transcript) -> None:
    """Tell the editor which language speech was recognised in when they had not said.

    A confidently detected language fills a blank Video.language (so the language filter
    finds the video); a language the editor typed is never overwritten.
    """
    given = (ctx.video.language or "").strip()
    if whisper_language(given) is not None or not transcript.words:
        return
    code = transcript.language
    name = WHISPER_LANGUAGES.get(code, code).title()
    if given:
        ctx.notice(f"The video's language {given!r} is not one speech recognition knows: "
                   f"the speech was recognised as {name} ({code}).")
        return
    probability = transcript.language_probability
    if probability is None:  # the only language REELSEARCH_ASR_LANGUAGES allows
        ctx.update(language=code)
        return
    if probability >= settings.REELSEARCH.get("ASR_LANGUAGE_THRESHOLD", 0.5):
        ctx.update(language=code)
        ctx.notice(f"Spoken language detected as {name} ({code}, probability "
                   f"{probability:.2f}); set the video's language if that is wrong.")
    else:
        ctx.notice(f"The spoken language is unclear (most likely {name}, probability "
                   f"{probability:.2f}): set the video's language and reprocess it.")


def segments(ctx: StageContext) -> None:
    """Replace the video's speech and metadata segments and its stored transcript words."""
    video = ctx.video
    transcript = _load_transcript(ctx)
    rows = _speech_rows(ctx, transcript) + [_metadata_row(video)]
    with transaction.atomic():
        video.segments.filter(kind__in=SPOKEN_KINDS).delete()
        Segment.objects.bulk_create(rows)
        StoredTranscript.objects.update_or_create(video=video, defaults=_stored(transcript))


SPOKEN_KINDS = (SegmentKind.SPEECH, SegmentKind.SENTENCE, SegmentKind.METADATA)


def _load_transcript(ctx: StageContext) -> Transcript | None:
    """Return the transcript the asr stage left, or None for a video without speech."""
    path = ctx.work_dir / "transcript.json"
    if not ctx.video.has_audio or not path.exists():
        return None
    return Transcript.from_dict(json.loads(path.read_text()))


def _stored(transcript: Transcript | None) -> dict[str, object]:
    """Return the catalog fields of a transcript (no words when there was no speech)."""
    if transcript is None:
        return {"language": "", "model": "", "words": []}
    return {"language": transcript.language, "model": transcript.model,
            "words": [[w.start, w.end, w.text] for w in transcript.words]}


def _speech_rows(ctx: StageContext, transcript: Transcript | None) -> list[Segment]:
    """Return the overlapping ~15 s chunks (recall) and the 2-8 s sentence units (moments)."""
    if transcript is None:
        return []
    conf = settings.REELSEARCH
    chunks = chunk_words(transcript.words, conf["CHUNK_TARGET_SECONDS"],
                         conf["CHUNK_OVERLAP_SECONDS"])
    units = sentence_units(transcript.words, conf["SENTENCE_MIN_SECONDS"],
                           conf["SENTENCE_MAX_SECONDS"])
    return ([_spoken_row(ctx.video, SegmentKind.SPEECH, n, c, transcript.model)
             for n, c in enumerate(chunks)]
            + [_spoken_row(ctx.video, SegmentKind.SENTENCE, n, u, transcript.model)
               for n, u in enumerate(units)])


def _spoken_row(video: Video, kind: str, n: int, chunk: Chunk, model: str) -> Segment:
    return Segment(id=Segment.make_id(video.pk, kind, n), video=video, kind=kind,
                   start=chunk.start, end=chunk.end, text=chunk.text, source_model=model)


def _metadata_row(video: Video) -> Segment:
    return Segment(
        id=Segment.make_id(video.pk, SegmentKind.METADATA, 0), video=video,
        kind=SegmentKind.METADATA, start=0.0, end=float(video.duration or 0.0),
        text=metadata_text(video.title, video.description, video.tags), source_model="editor",
    )


def embed(ctx: StageContext) -> None:
    """Embed every segment whose vector is missing or came from another model.

    A visual segment's vector is not the embedding of its text but the probability-weighted
    mean of its concepts' embeddings (see concepts.py); the concepts stage stores it, and a
    backfill after a text-model change recomputes it from the concepts listed in the text.
    """
    encoder = get_text_encoder()
    stale = [s for s in ctx.video.segments.all()
             if s.embedding_model != encoder.info.label or not s.text_vector]
    set_text_vectors(stale, encoder)
    Segment.objects.bulk_update(stale, ["text_vector", "embedding_model"])
    ctx.record_model("text", encoder.info.label)


def set_text_vectors(segments: list[Segment], encoder: TextEncoder) -> None:
    """Set the text vector and model label of segments (unsaved; also used by backfills)."""
    plain = [s for s in segments if s.kind != SegmentKind.VISUAL]
    vectors = encoder.encode([s.text for s in plain]) if plain else np.zeros((0, 0))
    for segment, vector in zip(plain, vectors, strict=True):
        segment.text_vector = vector.astype(np.float32).tobytes()
    for segment in segments:
        if segment.kind == SegmentKind.VISUAL:
            vector = concept_tags.text_vector(segment.text, encoder)
            if vector is None:
                vector = encoder.encode([segment.text])[0]
            segment.text_vector = vector.astype(np.float32).tobytes()
        segment.embedding_model = encoder.info.label


def chapters(ctx: StageContext) -> None:
    """Replace the video's automatic chapters (long videos only; see chapters.py)."""
    units = [Unit(s.start, s.end, s.text, vector)
             for s in ctx.video.segments.filter(kind__in=CHAPTER_KINDS).order_by("start")
             if (vector := s.vector()) is not None and s.text.strip()]
    found = make_chapters(units, float(ctx.video.duration or 0.0), chapter_settings(),
                          embed=get_text_encoder().encode)
    ctx.update(chapters=[chapter.to_dict() for chapter in found])


CHAPTER_KINDS = (SegmentKind.SENTENCE, SegmentKind.OCR)


def chapter_settings() -> ChapterSettings:
    """Return the chapter settings from REELSEARCH["CHAPTER_*"]."""
    conf = settings.REELSEARCH
    return ChapterSettings(
        min_video_seconds=conf["CHAPTER_MIN_VIDEO_SECONDS"],
        min_seconds=conf["CHAPTER_MIN_SECONDS"], window_seconds=conf["CHAPTER_WINDOW_SECONDS"],
        max_per_minute=conf["CHAPTER_MAX_PER_MINUTE"])


def index(ctx: StageContext) -> None:
    """Replace the video's documents in the search backend."""
    try:
        report = index_video(ctx.video)
    except BackendUnavailable as exc:
        raise TransientError(f"The search index is unavailable ({exc}).") from exc
    if not report.ok:
        first = next(iter(report.failed.items()))
        raise TransientError(f"{len(report.failed)} segments were not indexed (first: "
                             f"{first[0]}: {first[1]}).")


def cleanup(ctx: StageContext) -> None:
    """Remove the scratch directory once the video is ready."""
    shutil.rmtree(Path(settings.REELSEARCH["WORK_DIR"]) / str(ctx.video.pk), ignore_errors=True)


STAGES: dict[str, Callable[[StageContext], None]] = {
    "probe": probe, "keyframes": keyframes, "concepts": concepts, "ocr": ocr, "clip": clip,
    "audio": audio, "asr": asr, "segments": segments, "embed": embed, "chapters": chapters,
    "index": index,
}
