"""Shared fixtures: an isolated index, media root and scratch directory for every test."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import media

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REPO = Path(__file__).resolve().parent.parent


def require(condition: bool, what: str) -> None:
    """Fail in CI, skip elsewhere, when a service or tool the test needs is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI (make test installs and starts it).")
    pytest.skip(reason=f"{what} is not available here: run `make test` to set it up")


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings) -> None:
    """Require the PostgreSQL server that REELSEARCH_TEST_DATABASE_URL names, if it does."""
    if os.environ.get("REELSEARCH_TEST_DATABASE_URL", "").strip():
        from django.conf import settings

        database = settings.DATABASES["default"]
        require(postgres_answers(database),
                f"PostgreSQL at {database['HOST']}:{database['PORT']} (REELSEARCH_TEST_"
                "DATABASE_URL; `deploy/services postgres-up` starts one)")


def postgres_answers(database: dict) -> bool:
    """Return True when the PostgreSQL server of a DATABASES entry accepts its user."""
    import psycopg

    try:
        psycopg.connect(host=database["HOST"], port=database["PORT"] or None,
                        user=database["USER"], password=database["PASSWORD"],
                        dbname=database["NAME"], connect_timeout=5).close()
    except psycopg.Error:
        return False
    return True


@pytest.fixture(autouse=True)
def isolated_storage(request, settings, tmp_path: Path):
    """Point the index, media root and scratch directory of every test at tmp_path.

    Tests that use a module-wide catalog (fixtures named `shared_*`) keep its storage.
    """
    if any(name.startswith("shared_") for name in request.fixturenames):
        yield
        return
    from retrieval.backends import reset_backends

    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.RETRIEVAL_BACKENDS = {
        **settings.RETRIEVAL_BACKENDS,
        "default": {**settings.RETRIEVAL_BACKENDS["default"], "PATH": str(tmp_path / "index")},
    }
    settings.REELSEARCH = {**settings.REELSEARCH, "WORK_DIR": str(tmp_path / "work")}
    reset_backends()
    yield
    reset_backends()


@pytest.fixture(scope="session")
def media_tools() -> None:
    """Require ffmpeg, ffprobe and espeak-ng."""
    missing = media.missing_tools()
    require(not missing, f"media tools ({', '.join(missing)})")


@pytest.fixture(scope="session")
def clips(media_tools, tmp_path_factory) -> dict[str, Path]:
    """Generate small narrated clips once per session (three topics)."""
    root = tmp_path_factory.mktemp("clips")
    made = {}
    for name, (text, caption) in CLIP_TEXTS.items():
        made[name] = media.make_video(
            root / f"{name}.mp4", narration=text, captions=[(0.0, 3.0, caption)]
        )
    return made


CLIP_TEXTS = {
    "bread": (
        "To bake bread, mix flour, water, yeast and salt. Knead the dough for ten "
        "minutes, let it rise until it doubles, then bake it in a hot oven.",
        "BREAD",
    ),
    "rockets": (
        "A rocket engine burns fuel and pushes hot gas out of its nozzle. The "
        "spacecraft climbs into orbit around the Earth.",
        "ROCKETS",
    ),
    "gardening": (
        "Plant tomato seedlings in spring, water them every morning, and tie the "
        "stems to a wooden stake as they grow.",
        "TOMATOES",
    ),
}


def storage_settings(root: Path) -> dict:
    """Return settings overrides that put every writable path under root."""
    from django.conf import settings

    return {
        "MEDIA_ROOT": str(root / "media"),
        "RETRIEVAL_BACKENDS": {
            **settings.RETRIEVAL_BACKENDS,
            "default": {**settings.RETRIEVAL_BACKENDS["default"], "PATH": str(root / "index")},
        },
        "REELSEARCH": {**settings.REELSEARCH, "WORK_DIR": str(root / "work")},
    }


def opensearch_answers(url: str) -> bool:
    """Return True when an OpenSearch node at url reports yellow or green health."""
    health = f"{url.rstrip('/')}/_cluster/health?wait_for_status=yellow&timeout=5s"
    try:
        with urllib.request.urlopen(health, timeout=10) as response:  # noqa: S310 (test URL)
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def opensearch_url() -> Iterator[str]:
    """Return the URL of a running OpenSearch node (REELSEARCH_TEST_OPENSEARCH_URL, as `make
    test` sets).

    Without that variable, a private node is started with `deploy/services opensearch-up`
    (when Maven is installed; run-node finds or installs a Java 21+, and the first start
    builds the node with Maven) and stopped after the session.
    """
    default = f"http://127.0.0.1:{os.environ.get('REELSEARCH_OPENSEARCH_PORT', '9250')}"
    yield from running_service("REELSEARCH_TEST_OPENSEARCH_URL", default, opensearch_answers,
                               ("mvn",), "opensearch", "OpenSearch")


def running_service(variable: str, default_url: str, answers, tools: tuple[str, ...],
                    service: str, name: str) -> Iterator[str]:
    """Yield the URL of a service: the one in `variable`, or one `deploy/services` starts.

    A service this starts (when its programs are installed) is stopped afterwards; a service
    that does not answer fails the test run in CI and skips elsewhere (see `require`).
    """
    url = os.environ.get(variable, "")
    started = False
    if not url:
        url = default_url
        if not answers(url) and all(shutil.which(tool) for tool in tools):
            result = subprocess.run([str(REPO / "deploy" / "services"), f"{service}-up"],
                                    capture_output=True, text=True, check=False)
            started = result.returncode == 0
    require(answers(url), f"{name} at {url} (set {variable})")
    yield url
    if started:
        subprocess.run([str(REPO / "deploy" / "services"), f"{service}-down"],
                       capture_output=True, check=False)

