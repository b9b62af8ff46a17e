"""Django settings, read from the environment with working defaults (12-factor)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured

from deploy.database import database_from_url, sqlite_database

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("REELSEARCH_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # the SQLite database lives here


def env_bool(name: str, default: bool = False) -> bool:
    """Read a boolean environment variable ("1", "true", "yes" are true)."""
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    """Read a comma-separated environment variable."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Model caches must never reach for the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# Off unless DJANGO_DEBUG says otherwise (`make demo` and tests/settings.py turn it on).
DEBUG = env_bool("DJANGO_DEBUG", False)
# A public fallback key would let anyone forge sessions, password resets and signed values,
# so only DEBUG (local development) gets one.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "set DJANGO_SECRET_KEY to a long random string (e.g. the output of `python -c "
            "'import secrets; print(secrets.token_urlsafe(50))'`), or DJANGO_DEBUG=1 for "
            "local development only.")
    SECRET_KEY = "insecure-development-key-change-me"  # noqa: S105 (DEBUG only)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")

# --- HTTPS (`manage.py check --deploy` is clean with DEBUG off, a key and ALLOWED_HOSTS) ---
# DJANGO_HTTPS (default: on when DEBUG is off) says the site is reached over HTTPS: session
# and CSRF cookies are Secure and HSTS is sent (DJANGO_HSTS_SECONDS, default one year). Set
# it to 0 only for plain-HTTP serving on a trusted network. Behind a proxy that terminates
# TLS, set DJANGO_TLS_PROXY=1 so that its X-Forwarded-Proto header is trusted (the proxy
# must set it, overwriting what clients send).
HTTPS = env_bool("DJANGO_HTTPS", not DEBUG)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000" if HTTPS else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
# Redirecting http:// to https:// is the TLS terminator's job (a proxy or load balancer in
# front of gunicorn); DJANGO_SECURE_SSL_REDIRECT=1 makes Django do it too.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
if env_bool("DJANGO_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Deliberate choices, so `check --deploy` does not warn about them:
#   security.W008: no redirect to HTTPS in Django by default (see SECURE_SSL_REDIRECT above);
#   security.W005, security.W021: HSTS covers subdomains and asks for preloading only when
#   DJANGO_HSTS_INCLUDE_SUBDOMAINS / DJANGO_HSTS_PRELOAD say so (they bind the whole domain).
SILENCED_SYSTEM_CHECKS = ["security.W008", "security.W005", "security.W021"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc assets, served locally (no CDN)
    "catalog",
    "retrieval",
    "workers",
    "evaluation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "catalog.http.JsonErrorsMiddleware",  # {"error": ...} for every 4xx under /api/
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "deploy.urls"
WSGI_APPLICATION = "deploy.wsgi.application"
ASGI_APPLICATION = "deploy.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# The catalog: DATABASE_URL (postgresql://USER:PASSWORD@HOST:PORT/NAME, see deploy/database.py)
# for production, where web and worker processes on several hosts share it; without it, the
# SQLite file DATABASE_PATH. DATABASE_CONN_MAX_AGE keeps connections open that many seconds
# (checked before reuse; 0 = one connection per request or task): opening one per request
# was a tenth of a search request's time on SQLite.
DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
DATABASE_CONN_MAX_AGE = int(os.environ.get("DATABASE_CONN_MAX_AGE", "60"))
DATABASES = {
    "default": database_from_url(DATABASE_URL, DATABASE_CONN_MAX_AGE) if DATABASE_URL else
    sqlite_database(os.environ.get("DATABASE_PATH", str(VAR_DIR / "db.sqlite3")),
                    DATABASE_CONN_MAX_AGE),
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("REELSEARCH_MEDIA_ROOT", VAR_DIR / "media"))

# --- Search backends (loaded like Django's CACHES; see retrieval/backends/__init__.py) ---
_BACKEND_CLASSES = {
    "embedded": "retrieval.backends.embedded.EmbeddedBackend",
    "opensearch": "retrieval.backends.opensearch.OpenSearchBackend",
}
RETRIEVAL_BACKENDS = {
    "default": {
        "BACKEND": _BACKEND_CLASSES.get(
            os.environ.get("REELSEARCH_BACKEND", "embedded"),
            os.environ.get("REELSEARCH_BACKEND", "embedded"),
        ),
        "PATH": os.environ.get("REELSEARCH_INDEX_DIR", str(VAR_DIR / "index")),
        # OpenSearch (retrieval/backends/opensearch_client.py): one node or several, comma
        # separated; basic auth and TLS certificate checks for a secured or managed cluster.
        "URL": os.environ.get("OPENSEARCH_URL", "http://127.0.0.1:9200"),
        "USERNAME": os.environ.get("OPENSEARCH_USERNAME", ""),
        "PASSWORD": os.environ.get("OPENSEARCH_PASSWORD", ""),
        "VERIFY_CERTS": os.environ.get("OPENSEARCH_VERIFY_CERTS", "true"),
        "CA_CERTS": os.environ.get("OPENSEARCH_CA_CERTS", ""),
        "INDEX": os.environ.get("OPENSEARCH_INDEX", "reelsearch-segments"),
        "REPLICAS": int(os.environ.get("OPENSEARCH_REPLICAS", "1")),
        # Embedded backend: exact cosine up to this many vectors per field, above it an HNSW
        # graph (faiss) proposes candidates that are re-scored exactly (0 = always exact).
        "ANN_MIN_SIZE": int(os.environ.get("REELSEARCH_ANN_MIN_SIZE", "50000")),
        # Embedded backend: BM25 by tantivy (block-max WAND, an index derived from the SQLite
        # file) or by SQLite's FTS5 (scores every matching row; slower on large catalogs).
        "BM25_ENGINE": os.environ.get("REELSEARCH_BM25_ENGINE", "tantivy"),
        "ANN_EF_SEARCH": int(os.environ.get("REELSEARCH_ANN_EF_SEARCH", "128")),
    },
}

# --- Models (names, versions and dimensions are recorded with every segment) ---
# Speech recognition profiles: the packaged model each one runs (workers/pipeline/asr.py).
ASR_PROFILES = {"accurate": "whisper-base-int8", "fast": "whisper-tiny.en-int8"}
ASR_PROFILE = os.environ.get("REELSEARCH_ASR_PROFILE", "accurate").strip().lower() or "accurate"
if ASR_PROFILE not in ASR_PROFILES:
    raise ImproperlyConfigured(
        f"REELSEARCH_ASR_PROFILE={ASR_PROFILE!r} is not a speech recognition profile: use "
        f"{' or '.join(ASR_PROFILES)}.")

REELSEARCH = {
    "TEXT_MODEL": os.environ.get("REELSEARCH_TEXT_MODEL", "all-MiniLM-L6-v2"),
    "TEXT_MODEL_PATH": os.environ.get("REELSEARCH_TEXT_MODEL_PATH", ""),  # "" = packaged model
    "TEXT_DIM": int(os.environ.get("REELSEARCH_TEXT_DIM", "384")),
    # How the text model runs: "onnx" (onnxruntime, the file `make install` exports with
    # `manage.py export_text_model`) or "torch" (sentence-transformers).
    "TEXT_RUNTIME": os.environ.get("REELSEARCH_TEXT_RUNTIME", "onnx"),
    # A text adapter file from `manage.py train_adapter` ("" = the frozen encoder alone).
    "TEXT_ADAPTER": os.environ.get("REELSEARCH_TEXT_ADAPTER", ""),
    # Where exported ONNX models live (the text model, the concept classifier; outside the
    # repository: the virtualenv by default).
    "TEXT_ONNX_DIR": os.environ.get("REELSEARCH_TEXT_ONNX_DIR",
                                    str(Path(sys.prefix) / "share" / "reelsearch")),
    # "int8" (weights of the matrix products quantized per channel: mean cosine 0.992 to the
    # torch vectors, no R@1 loss, bench/encoder_speed.py) or "fp32".
    "TEXT_ONNX_PRECISION": os.environ.get("REELSEARCH_TEXT_ONNX_PRECISION", "int8"),
    # Query vectors kept per process (LRU); 0 turns the cache off.
    "QUERY_CACHE_SIZE": int(os.environ.get("REELSEARCH_QUERY_CACHE_SIZE", "1024")),
    # onnxruntime threads for batches of segments at ingestion (0 = one per core).
    "ENCODE_THREADS": int(os.environ.get("REELSEARCH_ENCODE_THREADS", "0")),
    # "accurate" (Whisper base, multilingual) or "fast" (Whisper tiny.en: English only,
    # about 1.7x faster here); REELSEARCH_ASR_MODEL, when set, names the model instead.
    # Without a broker, run the visual and audio branches in two threads (0: one after the
    # other, in the caller's thread).
    "EAGER_BRANCH_THREADS": os.environ.get("REELSEARCH_EAGER_BRANCH_THREADS", "1") != "0",
    "ASR_PROFILE": ASR_PROFILE,
    "ASR_MODEL": os.environ.get("REELSEARCH_ASR_MODEL") or ASR_PROFILES[ASR_PROFILE],
    "ASR_MODEL_PATH": os.environ.get("REELSEARCH_ASR_MODEL_PATH", ""),  # "" = packaged model
    # A window's speech is cut at pauses into this many parts, decoded side by side (greedy
    # decoding of one sequence gains nothing from a second thread); threads per part
    # (0 = the cores divided by the parts).
    "ASR_STREAMS": int(os.environ.get("REELSEARCH_ASR_STREAMS", "2")),
    "ASR_THREADS": int(os.environ.get("REELSEARCH_ASR_THREADS", "0")),
    # Speech chunks (cut where voice activity detection finds pauses) decoded together by
    # faster-whisper's batched pipeline (8: ASR 1.4x faster on long videos, but its word
    # timings cut moment localisation on the spoken benchmark); 1 decodes them in turn.
    "ASR_BATCH_SIZE": int(os.environ.get("REELSEARCH_ASR_BATCH_SIZE", "1")),
    # Speech recognition holds at most this many seconds of decoded audio at once (10 min:
    # 38 MB), whatever the length of the video (workers/pipeline/windows.py).
    "ASR_WINDOW_SECONDS": float(os.environ.get("REELSEARCH_ASR_WINDOW_SECONDS", "600")),
    # Spoken languages to pick from when a video has no (known) language, as Whisper codes
    # or names, comma separated ("en,de,fr"); empty = any language Whisper knows.
    "ASR_LANGUAGES": os.environ.get("REELSEARCH_ASR_LANGUAGES", ""),
    # Language detection: up to this many 30 s windows of speech, stopping at the first
    # whose top language is at least this probable (faster-whisper's detection options).
    "ASR_LANGUAGE_SEGMENTS": int(os.environ.get("REELSEARCH_ASR_LANGUAGE_SEGMENTS", "4")),
    "ASR_LANGUAGE_THRESHOLD": float(os.environ.get("REELSEARCH_ASR_LANGUAGE_THRESHOLD", "0.5")),
    # Threads for encoding one query: on small machines one thread answers fastest,
    # and concurrent requests use the other cores (0 = torch's default).
    "QUERY_THREADS": int(os.environ.get("REELSEARCH_QUERY_THREADS", "1")),
    "CHUNK_TARGET_SECONDS": float(os.environ.get("REELSEARCH_CHUNK_SECONDS", "15")),
    "CHUNK_OVERLAP_SECONDS": float(os.environ.get("REELSEARCH_CHUNK_OVERLAP", "3")),
    # Sentence units (2-8 s) that moments are localised over (workers/pipeline/segment.py).
    "SENTENCE_MIN_SECONDS": float(os.environ.get("REELSEARCH_SENTENCE_MIN_SECONDS", "2.0")),
    "SENTENCE_MAX_SECONDS": float(os.environ.get("REELSEARCH_SENTENCE_MAX_SECONDS", "8.0")),
    # Automatic chapters of videos longer than CHAPTER_MIN_VIDEO_SECONDS
    # (workers/pipeline/chapters.py): chapters of at least CHAPTER_MIN_SECONDS, topic
    # shifts found with CHAPTER_WINDOW_SECONDS of text on each side, at most
    # CHAPTER_MAX_PER_MINUTE chapters per minute of video.
    "CHAPTER_MIN_VIDEO_SECONDS": float(os.environ.get("REELSEARCH_CHAPTER_MIN_VIDEO_SECONDS",
                                                      "300")),
    "CHAPTER_MIN_SECONDS": float(os.environ.get("REELSEARCH_CHAPTER_MIN_SECONDS", "30")),
    "CHAPTER_WINDOW_SECONDS": float(os.environ.get("REELSEARCH_CHAPTER_WINDOW_SECONDS", "20")),
    "CHAPTER_MAX_PER_MINUTE": float(os.environ.get("REELSEARCH_CHAPTER_MAX_PER_MINUTE", "1")),
    "SIGNAL_WINDOW": int(os.environ.get("REELSEARCH_SIGNAL_WINDOW", "150")),
    # A query term held by fewer segments than this is matched by BM25 with typo tolerance.
    "TYPO_MAX_DF": int(os.environ.get("REELSEARCH_TYPO_MAX_DF", "2")),
    # Suggestions: how often to look for catalog changes, and rebuild in a background thread.
    "SUGGEST_CHECK_SECONDS": float(os.environ.get("REELSEARCH_SUGGEST_CHECK_SECONDS", "5")),
    "SUGGEST_BUILD_IN_BACKGROUND": True,
    "MOMENTS_PER_VIDEO": 3,
    "WORK_DIR": os.environ.get("REELSEARCH_WORK_DIR", str(VAR_DIR / "work")),
    "MAX_UPLOAD_BYTES": int(os.environ.get("REELSEARCH_MAX_UPLOAD_BYTES", str(2 * 1024**3))),
    # Longer files fail at probe with a clear message (seconds; 0 = no limit; 4 h default).
    "MAX_DURATION_SECONDS": float(os.environ.get("REELSEARCH_MAX_DURATION_SECONDS", "14400")),
    # A keyframe whose pixels vary less than this (std per channel, 0-255) is blank (black,
    # a flat colour): it gets no concept tags, and a window of blank keyframes no segment.
    "BLANK_FRAME_MAX_STD": float(os.environ.get("REELSEARCH_BLANK_FRAME_MAX_STD", "3.0")),
    # `manage.py ingest` follows a symbolic link only when its target lies under one of these
    # folders (REELSEARCH_INGEST_ROOTS, comma separated); empty = refuse every link.
    "INGEST_ROOTS": env_list("REELSEARCH_INGEST_ROOTS"),
    "RECOMMEND_HALF_LIFE_DAYS": float(os.environ.get("REELSEARCH_RECOMMEND_HALF_LIFE_DAYS", "14")),
    # Serve MEDIA_URL from Django with Range support (development, tests); off in production.
    "SERVE_MEDIA": env_bool("REELSEARCH_SERVE_MEDIA", DEBUG),
    # Transient errors (search backend down, database busy) retry with exponential backoff.
    "MAX_RETRIES": int(os.environ.get("REELSEARCH_MAX_RETRIES", "8")),
    "RETRY_BACKOFF_SECONDS": float(os.environ.get("REELSEARCH_RETRY_BACKOFF_SECONDS", "5")),
    "RETRY_BACKOFF_MAX_SECONDS": float(os.environ.get("REELSEARCH_RETRY_BACKOFF_MAX", "300")),
    # Recovery (workers/recover.py, run by Celery beat every RECOVER_EVERY_SECONDS and by
    # `manage.py recover`): a pending/processing video with no activity for
    # max(STUCK_AFTER_MIN_SECONDS, STUCK_AFTER_DURATION_FACTOR x duration), at most the hard
    # time limit + 60 s, is requeued from its recorded stage. A stage started more than
    # MAX_ATTEMPTS times without ending (the worker died each time) fails the video.
    "STUCK_AFTER_MIN_SECONDS": float(os.environ.get("REELSEARCH_STUCK_AFTER_MIN_SECONDS",
                                                    "600")),
    "STUCK_AFTER_DURATION_FACTOR": float(os.environ.get("REELSEARCH_STUCK_AFTER_FACTOR", "3")),
    "RECOVER_EVERY_SECONDS": float(os.environ.get("REELSEARCH_RECOVER_EVERY_SECONDS", "60")),
    "MAX_ATTEMPTS": int(os.environ.get("REELSEARCH_MAX_ATTEMPTS", "3")),
    # Visual stream (workers/pipeline/frames.py, concepts.py, ocr.py, clip.py).
    # Keyframes: a scene change (ffmpeg scene score above the threshold) starts one, but never
    # closer than MIN_INTERVAL to the previous (max rate) and never further than MAX_INTERVAL
    # (min rate). Thumbnails are THUMBNAIL_WIDTH wide; models see frames up to FRAME_MAX_SIDE.
    "KEYFRAME_SCENE_THRESHOLD": float(os.environ.get("REELSEARCH_KEYFRAME_SCENE", "0.05")),
    "KEYFRAME_MIN_INTERVAL": float(os.environ.get("REELSEARCH_KEYFRAME_MIN_INTERVAL", "2.0")),
    "KEYFRAME_MAX_INTERVAL": float(os.environ.get("REELSEARCH_KEYFRAME_MAX_INTERVAL", "4.0")),
    "THUMBNAIL_WIDTH": int(os.environ.get("REELSEARCH_THUMBNAIL_WIDTH", "320")),
    "FRAME_MAX_SIDE": int(os.environ.get("REELSEARCH_FRAME_MAX_SIDE", "960")),
    # Threads of the concept classifier and OCR (onnxruntime) while they run: one, as
    # spin-waiting intra-op threads cost more than they give on 2 shared cores (README).
    "VISUAL_THREADS": int(os.environ.get("REELSEARCH_VISUAL_THREADS", "1")),
    # Concept tags from a packaged ImageNet classifier ("" turns the stage off).
    "CONCEPT_MODEL": os.environ.get("REELSEARCH_CONCEPT_MODEL", "efficientnet-lite1"),
    # How the classifier runs: "onnx" (onnxruntime, the file `make install` exports with
    # `manage.py export_concept_model`; ~3x faster on one core) or "torch".
    "VISUAL_RUNTIME": os.environ.get("REELSEARCH_VISUAL_RUNTIME", "onnx"),
    "VISUAL_WINDOW_SECONDS": float(os.environ.get("REELSEARCH_VISUAL_WINDOW", "3.0")),
    "CONCEPTS_PER_WINDOW": int(os.environ.get("REELSEARCH_CONCEPTS_PER_WINDOW", "10")),
    "CONCEPT_MIN_PROBABILITY": float(os.environ.get("REELSEARCH_CONCEPT_MIN_PROB", "0.02")),
    # Region concepts: also classify 2x2 overlapping crops and a centre crop per keyframe;
    # a region's class becomes a visual segment with its box when at least this probable.
    "CONCEPT_REGIONS": os.environ.get("REELSEARCH_CONCEPT_REGIONS", "0") == "1",
    "REGION_MIN_PROBABILITY": float(os.environ.get("REELSEARCH_REGION_MIN_PROB", "0.3")),
    # Concept labels below this pooled probability are neither searchable (BM25) nor shown;
    # they still shape the segment's vector. Applied at indexing time (reindex to change).
    "CONCEPT_TEXT_MIN_PROBABILITY": float(os.environ.get("REELSEARCH_CONCEPT_TEXT_MIN_PROB",
                                                         "0.15")),
    "AUTO_TAGS": int(os.environ.get("REELSEARCH_AUTO_TAGS", "5")),
    "AUTO_TAG_MIN_SCORE": float(os.environ.get("REELSEARCH_AUTO_TAG_MIN_SCORE", "0.15")),
    # On-screen text (PP-OCR via rapidocr-onnxruntime).
    "OCR_ENABLED": env_bool("REELSEARCH_OCR", True),
    "OCR_MIN_CONFIDENCE": float(os.environ.get("REELSEARCH_OCR_MIN_CONFIDENCE", "0.6")),
    # Text detection runs on the frame reduced to this size; recognition reads full-size crops.
    "OCR_DET_MAX_SIDE": int(os.environ.get("REELSEARCH_OCR_DET_MAX_SIDE", "512")),
    # CLIP-family visual encoder: a sentence-transformers CLIP name (already in the local
    # cache) or a local transformers / open_clip directory. "" = no visual-dense signal.
    "VISUAL_MODEL": os.environ.get("REELSEARCH_VISUAL_MODEL", ""),
    # Its embedding size; the OpenSearch backend needs it for the `visual` knn field (0 = unset).
    "VISUAL_DIM": int(os.environ.get("REELSEARCH_VISUAL_DIM", "0")),
    # Default fusion weight per query signal (a request's `weights` override them) and a
    # multiplier per segment kind applied to fused segment scores (1.0 = neutral).
    "SIGNAL_WEIGHTS": {"bm25": 1.0, "text": 1.0, "visual": 1.0},
    "KIND_WEIGHTS": {"speech": 1.0, "ocr": 1.0, "visual": 1.0, "metadata": 1.0},
    # Named fusion profiles (retrieval/profiles.py); "default" ranks a request that names
    # no fusion. `manage.py tune_fusion` writes fitted ones to FUSION_PROFILE_FILE. The
    # default was chosen on the shipped benchmarks (README, "Evaluation"): z-scores, led by
    # the dense signal, with BM25 at 0.2 and gated by the share of query terms a segment
    # matches (cubed), so that one incidental word cannot outvote the dense signal.
    "FUSION_PROFILES": {
        "default": {"method": "arithmetic", "normalization": "z_score",
                    "weights": {"bm25": 0.2, "text": 1.0}, "coverage": 3.0},
    },
    "FUSION_PROFILE_FILE": os.environ.get("REELSEARCH_FUSION_PROFILE_FILE",
                                          str(VAR_DIR / "fusion_profiles.json")),
    # Lowest relevance (best query-segment cosine) of the high and medium tiers.
    "RELEVANCE_TIERS": {"high": 0.4, "medium": 0.3},
}

# --- Celery: eager without a broker, Redis when CELERY_BROKER_URL is set ---
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "") or None
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("CELERY_TASK_SOFT_TIME_LIMIT", "1800"))
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", "2100"))
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task running when its worker loses the broker is cancelled; its message is redelivered
# (after the visibility timeout, or sooner by the reconciler, workers/recover.py).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# Redis redelivers a message that a dead worker took once it has been unacknowledged for
# visibility_timeout seconds, so that must exceed the hard time limit (else a long task
# still running would be handed to a second worker). The reconciler (beat, every
# REELSEARCH["RECOVER_EVERY_SECONDS"]) brings a dead worker's video back within minutes.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get(
        "CELERY_VISIBILITY_TIMEOUT", str(CELERY_TASK_TIME_LIMIT + 300))),
    "unacked_restore_interval": int(os.environ.get("CELERY_UNACKED_RESTORE_INTERVAL", "30")),
    "unacked_restore_throttle": 1,
}
if os.environ.get("CELERY_BROKER_KEYPREFIX"):  # several deployments (or test runs) on one Redis
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = os.environ["CELERY_BROKER_KEYPREFIX"]

# --- Cache: holds the anonymous read throttle's counters (catalog.auth.ReadThrottle) ---
# Redis, shared by every process and host: REELSEARCH_CACHE_URL, or else the Redis server
# of CELERY_BROKER_URL with database REELSEARCH_CACHE_DB (default 1, apart from the broker's
# queues, as clearing a cache flushes its whole database). With neither, a local-memory
# cache: each process then counts on its own (N gunicorn workers allow N times the rate).
def _cache_url() -> str:
    url = os.environ.get("REELSEARCH_CACHE_URL", "").strip()
    broker = os.environ.get("CELERY_BROKER_URL", "").strip()
    if not url and broker.startswith(("redis://", "rediss://")):
        url = urlunsplit(urlsplit(broker)._replace(
            path=f"/{os.environ.get('REELSEARCH_CACHE_DB', '1')}"))
    return url


CACHES = {"default": (
    {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url(),
     "KEY_PREFIX": os.environ.get("REELSEARCH_CACHE_PREFIX", "reelsearch")}
    if _cache_url() else
    {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"})}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
    # API keys (`manage.py create_api_key NAME`) for writes and per-user endpoints.
    "DEFAULT_AUTHENTICATION_CLASSES": ["catalog.auth.ApiKeyAuthentication"],
    # Anonymous reads are throttled per client IP; requests with an API key are not.
    "DEFAULT_THROTTLE_CLASSES": ["catalog.auth.ReadThrottle"],
    "DEFAULT_THROTTLE_RATES": {"anon": os.environ.get("REELSEARCH_READ_RATE", "1200/minute")},
    "NUM_PROXIES": int(os.environ.get("REELSEARCH_NUM_PROXIES", "0")),
    "EXCEPTION_HANDLER": "catalog.http.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "reelsearch API",
    "DESCRIPTION": "Hybrid video search, moments and recommendations.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "reelsearch": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    },
}
