"""Build the opensearch-py client of an OpenSearch backend: hosts, basic auth and TLS.

Settings (RETRIEVAL_BACKENDS[alias]; deploy/settings.py fills them from the environment):

    URL            one node or several, comma separated (OPENSEARCH_URL), e.g.
                   "https://os-1.internal:9200,https://os-2.internal:9200"; the client
                   spreads requests over them and retries another when one is down
    USERNAME       basic auth user (OPENSEARCH_USERNAME); PASSWORD (OPENSEARCH_PASSWORD)
    VERIFY_CERTS   check the node's TLS certificate (OPENSEARCH_VERIFY_CERTS, default on)
    CA_CERTS       a PEM bundle of the CA that signed it (OPENSEARCH_CA_CERTS); default:
                   the CAs of certifi
    TIMEOUT        seconds per request (30)
    OPTIONS        further keyword arguments for ``opensearchpy.OpenSearch`` (they win)

Credentials in the URL (https://user:password@host) work too, unless USERNAME is set. They
are sent only over https://, or to a node on the loopback interface.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured
from opensearchpy import OpenSearch

SCHEMES = {"http": 9200, "https": 9200}
TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def build_client(alias: str, params: Mapping[str, object]) -> OpenSearch:
    """Return the client for the nodes, credentials and TLS settings of a backend."""
    return OpenSearch(**client_options(alias, params))


def client_options(alias: str, params: Mapping[str, object]) -> dict[str, object]:
    """Return the keyword arguments of ``OpenSearch`` for a backend's settings."""
    setting = f"settings.RETRIEVAL_BACKENDS[{alias!r}]"
    hosts, url_auth = parse_hosts(setting, params.get("URL"))
    options: dict[str, object] = {"hosts": hosts, "timeout": _timeout(setting, params),
                                  "max_retries": 2, "retry_on_timeout": True}
    auth = _basic_auth(setting, params, url_auth)
    secure = hosts[0]["scheme"] == "https"
    if auth:
        if not secure and not all(_loopback(host["host"]) for host in hosts):
            raise ImproperlyConfigured(
                f"{setting} sends a password over plain http:// to {hosts[0]['host']}: use "
                "https:// in OPENSEARCH_URL (the security plugin serves TLS), or reach the "
                "node on the loopback interface.")
        options["http_auth"] = auth
    if secure:
        options.update(_tls(setting, params))
    elif params.get("CA_CERTS"):
        raise ImproperlyConfigured(
            f"{setting}['CA_CERTS'] (OPENSEARCH_CA_CERTS) is set, but OPENSEARCH_URL uses "
            "http://: use https:// URLs, or unset it.")
    options.update(dict(params.get("OPTIONS") or {}))
    return options


def parse_hosts(setting: str, url: object) -> tuple[list[dict], tuple[str, str] | None]:
    """Split a comma-separated URL setting into hosts, and the credentials it carries."""
    entries = ([str(item) for item in url] if isinstance(url, list | tuple)
               else str(url or "").split(","))
    entries = [entry.strip() for entry in entries if entry.strip()]
    if not entries:
        raise ImproperlyConfigured(
            f"{setting}['URL'] is empty: set it (or OPENSEARCH_URL) to the node's address, "
            "e.g. http://127.0.0.1:9200, or several, comma separated.")
    parsed = [_host(setting, entry) for entry in entries]
    schemes = {host["scheme"] for host, _ in parsed}
    if len(schemes) > 1:
        raise ImproperlyConfigured(
            f"{setting}['URL'] mixes http:// and https:// hosts: use one scheme for every "
            "node of the cluster.")
    credentials = {auth for _, auth in parsed}
    if len(credentials) > 1:
        raise ImproperlyConfigured(
            f"{setting}['URL']: the hosts carry different credentials; give them once in "
            "OPENSEARCH_USERNAME and OPENSEARCH_PASSWORD instead.")
    return [host for host, _ in parsed], credentials.pop()


def _host(setting: str, entry: str) -> tuple[dict, tuple[str, str] | None]:
    """Parse one node address: scheme://[user:password@]host[:port][/prefix]."""
    shown = _redacted(entry)
    if "://" not in entry:
        raise ImproperlyConfigured(
            f"{setting}['URL']: {shown!r} has no scheme: write https://{shown} (or http://).")
    parts = urlsplit(entry)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ImproperlyConfigured(
            f"{setting}['URL']: {shown!r} uses {scheme}://; OpenSearch is reached over "
            "http:// or https://.")
    try:
        port = parts.port
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"{setting}['URL']: {shown!r} has an invalid port ({exc}): use a number from "
            "1 to 65535.") from exc
    if not parts.hostname:
        raise ImproperlyConfigured(f"{setting}['URL']: {shown!r} names no host.")
    host = {"host": parts.hostname, "port": port or SCHEMES[scheme], "scheme": scheme}
    if parts.path.strip("/"):
        host["url_prefix"] = parts.path.rstrip("/")
    auth = None
    if parts.username is not None:
        auth = (unquote(parts.username), unquote(parts.password or ""))
    return host, auth


def _basic_auth(setting: str, params: Mapping[str, object],
                url_auth: tuple[str, str] | None) -> tuple[str, str] | None:
    """Return (user, password) from USERNAME/PASSWORD or the URL, or None."""
    username, password = str(params.get("USERNAME") or ""), str(params.get("PASSWORD") or "")
    if username and url_auth:
        raise ImproperlyConfigured(
            f"{setting}: credentials are given twice, in OPENSEARCH_URL and in "
            "OPENSEARCH_USERNAME: keep one.")
    if bool(username) != bool(password):
        missing = "OPENSEARCH_PASSWORD" if username else "OPENSEARCH_USERNAME"
        raise ImproperlyConfigured(
            f"{setting}: basic auth needs a user and a password; set {missing} too (or "
            "neither).")
    if url_auth and not all(url_auth):
        raise ImproperlyConfigured(
            f"{setting}['URL'] names a user without a password: write "
            "https://USER:PASSWORD@HOST, or use OPENSEARCH_USERNAME and OPENSEARCH_PASSWORD.")
    return (username, password) if username else url_auth


def _tls(setting: str, params: Mapping[str, object]) -> dict[str, object]:
    """Return certificate checking options for https:// hosts."""
    verify = parse_bool(f"{setting}['VERIFY_CERTS'] (OPENSEARCH_VERIFY_CERTS)",
                        params.get("VERIFY_CERTS", True))
    ca_certs = str(params.get("CA_CERTS") or "")
    options: dict[str, object] = {"use_ssl": True, "verify_certs": verify}
    if not ca_certs:
        return options
    if not verify:
        raise ImproperlyConfigured(
            f"{setting}: CA_CERTS (OPENSEARCH_CA_CERTS) is set but VERIFY_CERTS is off, so "
            "it would not be used: turn OPENSEARCH_VERIFY_CERTS on, or unset the CA bundle.")
    if not os.path.isfile(ca_certs) or not os.access(ca_certs, os.R_OK):
        raise ImproperlyConfigured(
            f"{setting}['CA_CERTS'] (OPENSEARCH_CA_CERTS) = {ca_certs!r} is not a readable "
            "file: point it at the PEM bundle of the CA that signed the nodes' certificates.")
    options["ca_certs"] = ca_certs
    return options


def parse_bool(name: str, value: object) -> bool:
    """Read a boolean setting given as a bool or as text (1/0, true/false, yes/no, on/off)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE | FALSE:
        return text in TRUE
    raise ImproperlyConfigured(f"{name} = {value!r}: use true or false.")


def _timeout(setting: str, params: Mapping[str, object]) -> float:
    value = params.get("TIMEOUT", 30)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if not seconds > 0:
        raise ImproperlyConfigured(f"{setting}['TIMEOUT'] = {value!r}: use a number of "
                                   "seconds above 0.")
    return seconds


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _redacted(entry: str) -> str:
    """Return a node address with its password replaced by ***."""
    scheme, sep, rest = entry.partition("://")
    if not sep:
        scheme, rest = "", entry
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return entry
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{host}"
