"""deploy/compose.yaml is valid YAML describing the production stack (checked, not started)."""

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"


def load() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_declares_the_whole_stack():
    services = load()["services"]
    assert set(services) == {"web", "worker", "beat", "redis", "opensearch"}
    assert "celery -A deploy worker" in services["worker"]["command"]
    assert "celery -A deploy beat" in services["beat"]["command"]  # runs the reconciler
    assert "gunicorn deploy.wsgi:application" in services["web"]["command"]


def test_app_services_point_at_redis_and_opensearch_and_wait_for_them():
    services = load()["services"]
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["CELERY_BROKER_URL"].startswith("redis://redis:")
        assert env["OPENSEARCH_URL"] == "http://opensearch:9200"
        assert env["REELSEARCH_BACKEND"] == "opensearch"
        assert set(services[name]["depends_on"]) == {"redis", "opensearch"}


def test_opensearch_security_choice_is_explicit_and_version_matches_the_test_node():
    opensearch = load()["services"]["opensearch"]
    assert opensearch["image"].endswith(":2.19.1")
    assert opensearch["environment"]["DISABLE_SECURITY_PLUGIN"] == "true"
    assert "healthcheck" in opensearch


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
