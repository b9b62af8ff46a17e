"""deploy/compose.yaml is valid YAML describing the production stack (checked, not started)."""

import re
from pathlib import Path

import yaml

from deploy.database import database_from_url
from retrieval.backends.opensearch_client import client_options

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"
APPS = ("web", "worker", "beat")


def load() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def interpolate(value: str, **env: str) -> str:
    """Substitute ${VAR}, ${VAR:-default} and ${VAR:?error} as docker compose does."""
    def one(match: re.Match) -> str:
        name, operator, rest = match.group(1), match.group(2) or "", match.group(3)
        if env.get(name):
            return env[name]
        if operator == ":?":
            raise KeyError(f"{name}: {rest}")
        return rest
    return re.sub(r"\$\{(\w+)(:[-?])?([^}]*)\}", one, value)


def test_compose_declares_the_whole_stack():
    services = load()["services"]
    assert set(services) == {"web", "worker", "beat", "postgres", "redis", "opensearch"}
    assert "celery -A deploy worker" in services["worker"]["command"]
    assert "celery -A deploy beat" in services["beat"]["command"]  # runs the reconciler
    assert "gunicorn deploy.wsgi:application" in services["web"]["command"]


def test_app_services_point_at_postgres_redis_and_opensearch_and_wait_for_them():
    services = load()["services"]
    for name in APPS:
        env = services[name]["environment"]
        assert env["CELERY_BROKER_URL"].startswith("redis://redis:")
        assert env["DATABASE_URL"].startswith("postgresql://reelsearch:")
        assert env["DATABASE_URL"].endswith("@postgres:5432/reelsearch")
        assert env["OPENSEARCH_URL"].startswith("https://")
        assert env["REELSEARCH_BACKEND"] == "opensearch"
        assert set(services[name]["depends_on"]) == {"postgres", "redis", "opensearch"}
        assert all(dependency["condition"] == "service_healthy"
                   for dependency in services[name]["depends_on"].values())


def test_every_secret_comes_from_the_environment_with_no_default():
    secret = re.compile(r"PASSWORD|SECRET|TOKEN|DATABASE_URL", re.IGNORECASE)
    seen = []
    for name, service in load()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if not secret.search(key):
                continue
            seen.append(f"{name}.{key}")
            assert re.search(r"\$\{\w+:\?[^}]+\}", str(value)), f"{name}.{key} = {value}"
            assert ":-" not in str(value), f"{name}.{key} has a default: {value}"
            try:
                interpolate(str(value))
            except KeyError:
                continue
            raise AssertionError(f"{name}.{key} would start without its secret")
    # Django's key, the database URL and the OpenSearch password of each app service, and the
    # passwords the two servers start with.
    assert len(seen) == 3 * len(APPS) + 2, seen


def test_app_settings_from_compose_build_a_database_and_a_tls_client(tmp_path):
    services = load()["services"]
    env = services["web"]["environment"]
    secrets = {"POSTGRES_PASSWORD": "pg-Secret1", "OPENSEARCH_ADMIN_PASSWORD": "Os-Secret1!"}
    database = database_from_url(interpolate(env["DATABASE_URL"], **secrets))
    assert (database["ENGINE"], database["HOST"], database["NAME"], database["PASSWORD"]) == (
        "django.db.backends.postgresql", "postgres", "reelsearch", "pg-Secret1")
    ca = tmp_path / "root-ca.pem"  # stands in for the file on the shared volume
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    options = client_options("default", {
        "URL": env["OPENSEARCH_URL"], "USERNAME": env["OPENSEARCH_USERNAME"],
        "PASSWORD": interpolate(env["OPENSEARCH_PASSWORD"], **secrets),
        "VERIFY_CERTS": env["OPENSEARCH_VERIFY_CERTS"], "CA_CERTS": str(ca)})
    assert options["verify_certs"] is True and options["http_auth"] == ("admin", "Os-Secret1!")
    opensearch = services["opensearch"]
    # The app names the node as its certificate does, and reads the CA from its config volume.
    assert options["hosts"][0]["host"] in opensearch["networks"]["default"]["aliases"]
    assert "opensearch-config:/usr/share/opensearch/config" in opensearch["volumes"]
    mount = next(v for v in services["web"]["volumes"] if v.startswith("opensearch-config:"))
    assert Path(env["OPENSEARCH_CA_CERTS"]).parent == Path(mount.split(":")[1])
    assert mount.endswith(":ro")


def test_opensearch_is_3x_with_the_security_plugin_on():
    opensearch = load()["services"]["opensearch"]
    assert re.fullmatch(r"opensearchproject/opensearch:3\.\d+\.\d+", opensearch["image"])
    env = opensearch["environment"]
    assert "DISABLE_SECURITY_PLUGIN" not in env and "plugins.security.disabled" not in env
    assert env["OPENSEARCH_INITIAL_ADMIN_PASSWORD"].startswith("${OPENSEARCH_ADMIN_PASSWORD:?")
    check = " ".join(opensearch["healthcheck"]["test"])
    assert "https://" in check and "--cacert" in check and " -k" not in check


def test_postgres_keeps_the_catalog_on_a_named_volume():
    stack = load()
    postgres = stack["services"]["postgres"]
    assert re.fullmatch(r"postgres:\d+", postgres["image"])
    volume, _, target = postgres["volumes"][0].partition(":")
    assert target == "/var/lib/postgresql/data" and volume in stack["volumes"]
    env = postgres["environment"]
    assert (env["POSTGRES_DB"], env["POSTGRES_USER"]) == ("reelsearch", "reelsearch")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_redis_persists_queued_tasks_across_a_restart():
    stack = load()
    redis = stack["services"]["redis"]
    command = redis["command"].split()
    assert command[0] == "redis-server"
    option = {name: value for name, value in zip(command[1::2], command[2::2], strict=True)}
    assert option["--appendonly"] == "yes"
    assert option["--appendfsync"] == "everysec"
    volume, _, target = next(v for v in redis["volumes"] if v.endswith(":/data")).partition(":")
    assert option.get("--dir", "/data") == target  # the append-only file is on the volume
    assert volume in stack["volumes"], "the Redis volume must be a named volume"
