"""Django settings, read from the environment with working defaults (12-factor)."""

from __future__ import annotations

import os
from pathlib import Path

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

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-development-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "catalog",
    "retrieval",
    "workers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DATABASE_PATH", str(VAR_DIR / "db.sqlite3")),
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
    }
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
        "URL": os.environ.get("OPENSEARCH_URL", "http://127.0.0.1:9200"),
        "INDEX": os.environ.get("OPENSEARCH_INDEX", "reelsearch-segments"),
        "REPLICAS": int(os.environ.get("OPENSEARCH_REPLICAS", "1")),
    },
}

# --- Models (names, versions and dimensions are recorded with every segment) ---
REELSEARCH = {
    "TEXT_MODEL": os.environ.get("REELSEARCH_TEXT_MODEL", "all-MiniLM-L6-v2"),
    "TEXT_MODEL_PATH": os.environ.get("REELSEARCH_TEXT_MODEL_PATH", ""),  # "" = packaged model
    "TEXT_DIM": int(os.environ.get("REELSEARCH_TEXT_DIM", "384")),
    "ASR_MODEL": os.environ.get("REELSEARCH_ASR_MODEL", "whisper-base-int8"),
    "ASR_MODEL_PATH": os.environ.get("REELSEARCH_ASR_MODEL_PATH", ""),  # "" = packaged model
    "ASR_THREADS": int(os.environ.get("REELSEARCH_ASR_THREADS", "0")),
    "CHUNK_TARGET_SECONDS": float(os.environ.get("REELSEARCH_CHUNK_SECONDS", "15")),
    "CHUNK_OVERLAP_SECONDS": float(os.environ.get("REELSEARCH_CHUNK_OVERLAP", "3")),
    "SIGNAL_WINDOW": int(os.environ.get("REELSEARCH_SIGNAL_WINDOW", "150")),
    "MOMENTS_PER_VIDEO": 3,
    "WORK_DIR": os.environ.get("REELSEARCH_WORK_DIR", str(VAR_DIR / "work")),
    "MAX_UPLOAD_BYTES": int(os.environ.get("REELSEARCH_MAX_UPLOAD_BYTES", str(2 * 1024**3))),
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

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
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
