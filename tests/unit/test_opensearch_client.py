"""The OpenSearch client from settings: several hosts, basic auth, TLS, and clear errors.

These build real opensearch-py clients and look at the connections they would open; no
request is sent (the node's side is covered by the OpenSearch conformance suite).
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from retrieval.backends.opensearch import OpenSearchBackend
from retrieval.backends.opensearch_client import build_client, client_options

REPO = Path(__file__).resolve().parents[2]


def connections(client) -> list:
    """Return a client's connections, by host (the pool shuffles them)."""
    return sorted(client.transport.connection_pool.connections, key=lambda c: c.host)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_several_hosts_each_get_a_connection_with_the_same_credentials(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    client = build_client("default", {
        "URL": "https://os-1.internal:9200, https://os-2.internal ,https://lb.internal:443/search/",
        "USERNAME": "reelsearch", "PASSWORD": "p@ss:word", "CA_CERTS": str(ca),
        "VERIFY_CERTS": "true", "TIMEOUT": "12"})
    conns = connections(client)
    assert [c.host for c in conns] == ["https://lb.internal:443", "https://os-1.internal:9200",
                                       "https://os-2.internal:9200"]
    assert [c.url_prefix for c in conns] == ["/search", "", ""]
    for conn in conns:
        assert conn.use_ssl and conn.headers["authorization"] == basic("reelsearch", "p@ss:word")
        assert conn.pool.cert_reqs == "CERT_REQUIRED" and conn.pool.ca_certs == str(ca)
        assert conn.timeout == 12.0
    assert client.transport.max_retries == 2  # a dead node: the next one is tried


def test_credentials_may_come_in_the_url_percent_encoded():
    client = build_client("default", {"URL": "https://app:s%40cret@os.example.com"})
    (conn,) = connections(client)
    assert conn.host == "https://os.example.com:9200"
    assert conn.headers["authorization"] == basic("app", "s@cret")


def test_verification_can_be_turned_off_and_a_plain_local_node_needs_nothing():
    options = client_options("default", {"URL": "https://10.0.0.5:9200",
                                         "VERIFY_CERTS": "false"})
    assert options["verify_certs"] is False and "ca_certs" not in options
    local = client_options("default", {"URL": "http://127.0.0.1:9250"})
    assert local["hosts"] == [{"host": "127.0.0.1", "port": 9250, "scheme": "http"}]
    assert not {"http_auth", "use_ssl", "verify_certs", "ca_certs"} & set(local)
    loopback_auth = client_options("default", {"URL": "http://localhost:9200",
                                               "USERNAME": "admin", "PASSWORD": "x"})
    assert loopback_auth["http_auth"] == ("admin", "x")


def test_options_pass_through_and_win():
    options = client_options("default", {"URL": "https://os:9200",
                                         "OPTIONS": {"ssl_assert_hostname": False,
                                                     "max_retries": 5}})
    assert options["ssl_assert_hostname"] is False and options["max_retries"] == 5


@pytest.mark.parametrize(("params", "message"), [
    ({"URL": ""}, "is empty: set it (or OPENSEARCH_URL)"),
    ({"URL": " , "}, "is empty"),
    ({"URL": "os.internal:9200"}, "has no scheme: write https://os.internal:9200"),
    ({"URL": "ftp://os.internal"}, "uses ftp://; OpenSearch is reached over http:// or https://"),
    ({"URL": "https://os.internal:92x0"}, "has an invalid port"),
    ({"URL": "https://:9200"}, "names no host"),
    ({"URL": "https://a:9200,http://b:9200"}, "mixes http:// and https:// hosts"),
    ({"URL": "https://u:p@a,https://v:q@b"}, "the hosts carry different credentials"),
    ({"URL": "https://u:p@a", "USERNAME": "u", "PASSWORD": "p"}, "credentials are given twice"),
    ({"URL": "https://a", "USERNAME": "u"}, "set OPENSEARCH_PASSWORD too"),
    ({"URL": "https://a", "PASSWORD": "p"}, "set OPENSEARCH_USERNAME too"),
    ({"URL": "https://u@a"}, "names a user without a password"),
    ({"URL": "http://os.internal:9200", "USERNAME": "u", "PASSWORD": "p"},
     "sends a password over plain http:// to os.internal: use https://"),
    ({"URL": "https://a", "VERIFY_CERTS": "maybe"},
     "['VERIFY_CERTS'] (OPENSEARCH_VERIFY_CERTS) = 'maybe': use true or false"),
    ({"URL": "https://a", "CA_CERTS": "missing-ca.pem"},
     "= 'missing-ca.pem' is not a readable file"),
    ({"URL": "https://a", "CA_CERTS": "ca.pem", "VERIFY_CERTS": "0"},
     "CA_CERTS (OPENSEARCH_CA_CERTS) is set but VERIFY_CERTS is off"),
    ({"URL": "http://a", "CA_CERTS": "ca.pem"}, "is set, but OPENSEARCH_URL uses http://"),
    ({"URL": "https://a", "TIMEOUT": "soon"}, "['TIMEOUT'] = 'soon': use a number of seconds"),
    ({"URL": "https://a", "TIMEOUT": 0}, "use a number of seconds above 0"),
])
def test_bad_values_fail_with_what_to_do(params, message):
    with pytest.raises(ImproperlyConfigured) as error:
        client_options("search", params)
    assert "settings.RETRIEVAL_BACKENDS['search']" in str(error.value)
    assert message in str(error.value)


def test_a_password_in_a_bad_url_is_not_shown():
    with pytest.raises(ImproperlyConfigured) as error:
        client_options("default", {"URL": "ftp://app:hunter2@os.internal"})
    assert "hunter2" not in str(error.value) and "app:***@os.internal" in str(error.value)


def test_the_backend_builds_its_client_from_these_settings():
    backend = OpenSearchBackend("default", {
        "URL": "https://os-1:9200,https://os-2:9200", "INDEX": "reelsearch-segments",
        "USERNAME": "reelsearch", "PASSWORD": "pw", "DIMENSIONS": {"text": 8}})
    assert [c.host for c in connections(backend.client)] == ["https://os-1:9200",
                                                             "https://os-2:9200"]


def test_settings_read_the_environment(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "deploy.settings", "DJANGO_DEBUG": "1",
           "REELSEARCH_BACKEND": "opensearch", "REELSEARCH_VAR_DIR": str(tmp_path / "var"),
           "OPENSEARCH_URL": "https://os-1:9200,https://os-2:9200",
           "OPENSEARCH_USERNAME": "reelsearch", "OPENSEARCH_PASSWORD": "pw",
           "OPENSEARCH_CA_CERTS": str(ca), "OPENSEARCH_VERIFY_CERTS": "yes"}
    code = ("import django; django.setup(); from retrieval.backends import get_backend; "
            "c = get_backend().client.transport.connection_pool.connections; "
            "print(sorted(x.host for x in c), c[0].pool.ca_certs, c[0].headers['authorization'])")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout.strip() == (f"['https://os-1:9200', 'https://os-2:9200'] {ca} "
                                   f"{basic('reelsearch', 'pw')}"), proc.stderr
    bad = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=60, env={**env, "OPENSEARCH_VERIFY_CERTS": "sure"})
    assert "OPENSEARCH_VERIFY_CERTS) = 'sure': use true or false" in bad.stderr


def test_ipv6_hosts_and_the_loopback_rule():
    (conn,) = connections(build_client("default", {"URL": "https://[fd00::5]:9201"}))
    assert conn.host == "https://[fd00::5]:9201"
    local = client_options("default", {"URL": "http://[::1]:9200", "USERNAME": "u",
                                       "PASSWORD": "p"})
    assert local["hosts"][0]["host"] == "::1" and local["http_auth"] == ("u", "p")
    with pytest.raises(ImproperlyConfigured, match="plain http:// to fd00::5"):
        client_options("default", {"URL": "http://[fd00::5]:9200", "USERNAME": "u",
                                   "PASSWORD": "p"})
