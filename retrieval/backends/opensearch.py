"""OpenSearch backend: BM25 and lucene HNSW k-NN over one index, read and written through aliases.

What OpenSearch stores: one document per segment, document ``_id`` = segment id (so indexing a
segment again replaces it), with the fields of ``opensearch_template.json``: ``id``,
``video_id``, ``kind`` (keywords), ``start``, ``end`` (floats), ``text`` (English analysis:
standard tokenizer, possessives, lowercase, ASCII folding, Porter stemming), the filter fields
``tags`` (keyword, lowercased), ``language`` (keyword), ``duration`` (float), ``published``
(boolean), and one ``knn_vector`` per configured vector field under ``vectors.<name>``
(lucene engine, HNSW, cosine; ``text`` always, ``visual`` only when a visual dimension is
configured; vectors of an unmapped field, and all-zero vectors, are left out). Mappings are
strict, and a document OpenSearch rejects is reported as a per-document failure.

Aliases, for ``INDEX`` = settings.RETRIEVAL_BACKENDS[alias]['INDEX']::

    INDEX            read alias: every query goes here
    INDEX-write      write alias (is_write_index) of the same concrete index
    INDEX-building   exists only while rebuild() loads a new index; writes go there too
    INDEX-<stamp>    the concrete indices

``rebuild()`` creates ``INDEX-<stamp>`` behind ``INDEX-building`` (no replicas, refresh off,
asynchronous translog), bulk-loads it (BULK_THREADS requests in flight), commits it (so
that replicas copy its files instead of indexing every document again), restores those
settings, refreshes it, waits for its replicas when the cluster has room for them, then
moves ``INDEX`` and ``INDEX-write`` onto it and drops ``INDEX-building`` in one ``_aliases``
call, and deletes the old index. Writes and deletes
that arrive meanwhile go to the building index first, then to the live one, so none is lost
whichever side of the swap they land on. A rebuild that fails midway deletes its half-built
index; the live alias never moved. Run one rebuild at a time: a rebuild deletes an index
left behind ``INDEX-building`` by an interrupted one.

k-NN filters go inside the ``knn`` query (efficient filtering), never after it. Vectors are
stored and queried as unit vectors in lucene's inner-product space (the inner product of unit
vectors is their cosine, at a third of cosinesimil's arithmetic per comparison); lucene scores
it ``1 + cos`` for a positive cosine and ``1 / (1 - cos)`` below. Hits carry the cosine, like
the embedded backend; an index built by an earlier version in the cosinesimil space (score
``(1 + cos) / 2``) is read correctly until ``manage.py reindex`` replaces it. With the
neural-search plugin on the node, ``hybrid()`` fuses BM25 and k-NN on the server (``hybrid``
query and a temporary search pipeline with ``normalization-processor`` or
``score-ranker-processor``); ``retrieval/fusion.py`` stays the default.

Settings (RETRIEVAL_BACKENDS[alias]): URL, INDEX, REPLICAS (default 1), SHARDS (1),
DIMENSIONS ({field: dim}; default REELSEARCH TEXT_DIM and, if set, VISUAL_DIM), REFRESH
("wait_for" default, "true" or "false": when written documents become searchable),
TIMEOUT (seconds, 30), BULK_SIZE (documents per bulk request, 500), BULK_THREADS (bulk requests
a rebuild keeps in flight, 2), HNSW (graph parameters {"m", "ef_construction"}; the
template's 16 / 64 by default),
QUANTIZE (0: float32 vectors; 7 or 1: lucene scalar quantization to 7 or 1 bits),
KNN_CANDIDATES (HNSW explores at least this many candidates, even for a small k: recall; 100),
SERVER_FUSION (fuse on the node whenever it ranks like retrieval/fusion.py: one round trip;
True), OPTIONS (extra keyword arguments for ``opensearchpy.OpenSearch``:
authentication, TLS).
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from itertools import islice
from pathlib import Path
from types import MappingProxyType

import numpy as np
import orjson
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from opensearchpy import exceptions as errors

from retrieval.documents import Filters, Hit, IndexReport, SegmentDoc
from retrieval.facets import DURATION_BUCKETS, MAX_VALUES
from retrieval.fusion import FusionSpec, ScoredSegment
from retrieval.text import query_terms
from retrieval.typos import MAX_EXPANSIONS, max_edits

from .base import BackendUnavailable, SearchBackend, invalid_document, unit_vector
from .opensearch_client import build_client

logger = logging.getLogger("reelsearch.opensearch")

TEMPLATE = Path(__file__).with_name("opensearch_template.json")
TRANSIENT_STATUS = {429, 502, 503, 504}
REFRESH_POLICIES = ("wait_for", "true", "false")
SIGNAL_ORDER = ("bm25", "text", "visual")
COMBINATIONS = {"arithmetic": "arithmetic_mean", "geometric": "geometric_mean",
                "harmonic": "harmonic_mean"}
RANKED = {"sort": [{"_score": "desc"}, {"id": "asc"}], "track_scores": True,
          "_source": ["video_id"]}
MAX_DIMENSION = 16_000  # the lucene engine's limit
QUANTIZE_BITS = (0, 7, 1)
# facet aggregations: distinct videos per tag, language and duration bucket
VIDEO_COUNT = {"cardinality": {"field": "video_id", "precision_threshold": 40_000}}
FACET_AGGS = {
    "tags": {"terms": {"field": "tags", "size": MAX_VALUES, "order": {"videos": "desc"}}},
    "language": {"terms": {"field": "language", "size": MAX_VALUES,
                           "order": {"videos": "desc"}}},
    "duration": {"range": {"field": "duration", "keyed": False, "ranges": [
        {"key": b.key, **({"from": b.low} if b.low > 0 else {}),
         **({"to": b.high} if b.high is not None else {})} for b in DURATION_BUCKETS]}},
}
# what a rebuild changes on the index it loads, and what it restores before the swap
LOADING = {"refresh_interval": "-1", "translog.durability": "async",
           "translog.flush_threshold_size": "1gb"}


@cache
def _template() -> str:
    return TEMPLATE.read_text(encoding="utf-8")


def index_body(dimensions: Mapping[str, int], shards: int = 1, replicas: int = 0,
               hnsw: Mapping[str, int] | None = None, quantize: int = 0) -> dict:
    """Render the index template into the body of a create-index request.

    ``hnsw`` overrides the graph parameters (``m``, ``ef_construction``); ``quantize`` = 7 or
    1 stores the vectors as lucene scalar-quantized 7-bit or 1-bit codes (0: float32).
    """
    template = json.loads(_template())
    template.pop("_comment", None)
    vector_field = template.pop("vector_field")
    template["settings"]["index"].update(number_of_shards=shards, number_of_replicas=replicas)
    parameters = vector_field["method"]["parameters"]
    parameters.update({key: int(value) for key, value in (hnsw or {}).items()})
    if quantize:
        parameters["encoder"] = {"name": "sq", "parameters": {"bits": int(quantize)}}
    vectors = template["mappings"]["properties"]["vectors"]["properties"]
    for name, dimension in dimensions.items():
        vectors[name] = {**copy.deepcopy(vector_field), "dimension": int(dimension)}
    return template


def filter_query(filters: Filters) -> dict | None:
    """Translate Filters into a bool filter query (None when nothing is restricted)."""
    clauses: list[dict] = []
    if filters.tags:
        clauses.append({"terms": {"tags": [tag.lower() for tag in filters.tags]}})
    if filters.language:
        clauses.append({"term": {"language": filters.language}})
    bounds = {op: value for op, value in (("gte", filters.min_duration),
                                          ("lte", filters.max_duration)) if value is not None}
    if bounds:
        clauses.append({"range": {"duration": bounds}})
    if filters.published is not None:
        clauses.append({"term": {"published": filters.published}})
    for field, values in (("video_id", filters.video_ids), ("kind", filters.kinds)):
        if values:
            clauses.append({"terms": {field: list(values)}})
    excluded = [{"terms": {"video_id": list(filters.exclude_video_ids)}}] \
        if filters.exclude_video_ids else []
    if not clauses and not excluded:
        return None
    return {"bool": {"filter": clauses, "must_not": excluded}}


def _lost_shards(exc: errors.TransportError) -> bool:
    """Return True for a search that failed because shard copies were lost (a node left).

    Searches ask for complete results (allow_partial_search_results=false), so losing a
    shard with its node is a 500 search_phase_execution_exception until a replica takes
    over: worth a retry, like a 503.
    """
    return exc.status_code == 500 and exc.error == "search_phase_execution_exception"


def _node_units(signal: str, score: float) -> float:
    """Return a signal's score in the hybrid query's units (k-NN: ``(1 + cos) / 2``)."""
    return score if signal == "bm25" else (1.0 + score) / 2.0


def _cosine(space: str, score: float) -> float:
    """Return the cosine behind a lucene k-NN score in an index's vector space."""
    if space == "cosinesimil":
        return 2.0 * score - 1.0
    return score - 1.0 if score >= 1.0 else 1.0 - 1.0 / score  # maximum inner product


# Puts an inner-product k-NN score in the hybrid query's units, (1 + cos) / 2, as the
# cosinesimil space scores: min-max and l2 normalization then see an affine map of the cosine,
# as retrieval/fusion.py does (lucene's own inner-product score bends below cos = 0).
HALF_COSINE = {"lang": "painless",
               "source": "double s = _score; return s >= 1 ? s / 2 : 1 - 0.5 / s;"}


def _stored_vector(vector: np.ndarray) -> np.ndarray:
    """Return a unit vector for the bulk body (7 decimals: float32 precision, half the bytes)."""
    return np.round(unit_vector(vector, np.float64), 7).astype(np.float32)


def _bulk_body(target: str, chunk: list[tuple[str, dict]]) -> bytes:
    """Serialize bulk actions with orjson (numpy vectors directly: a sixth of json's time)."""
    lines = []
    for doc_id, source in chunk:
        lines.append(orjson.dumps({"index": {"_index": target, "_id": doc_id}}))
        lines.append(orjson.dumps(source, option=orjson.OPT_SERIALIZE_NUMPY))
    lines.append(b"")
    return b"\n".join(lines)


def _batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _reason(error: dict) -> str:
    reason = f"{error.get('type', 'error')}: {error.get('reason', '')}"
    cause = error.get("caused_by") or {}
    return f"{reason} ({cause.get('reason')})" if cause.get("reason") else reason


def _dimensions(alias: str, params: Mapping[str, object]) -> dict[str, int]:
    dimensions = params.get("DIMENSIONS")
    if dimensions is None:
        conf = settings.REELSEARCH
        dimensions = {"text": conf.get("TEXT_DIM")}
        if conf.get("VISUAL_DIM"):
            dimensions["visual"] = conf["VISUAL_DIM"]
    dimensions = dict(dimensions)
    for name, dimension in dimensions.items():
        if isinstance(dimension, bool) or not isinstance(dimension, int) \
                or not 1 <= dimension <= MAX_DIMENSION:
            raise ImproperlyConfigured(
                f"The {name!r} vector dimension of settings.RETRIEVAL_BACKENDS[{alias!r}] is "
                f"{dimension!r}: set REELSEARCH['TEXT_DIM'] / ['VISUAL_DIM'] (or the backend's "
                f"DIMENSIONS) to an integer between 1 and {MAX_DIMENSION}."
            )
    return dimensions


def _hnsw(alias: str, params: Mapping[str, object]) -> tuple[dict[str, int], int]:
    """Read HNSW (graph parameters) and QUANTIZE (bits) from a backend's settings."""
    hnsw = dict(params.get("HNSW") or {})
    unknown = set(hnsw) - {"m", "ef_construction"}
    if unknown or not all(isinstance(v, int) and 2 <= v <= 4096 for v in hnsw.values()):
        raise ImproperlyConfigured(
            f"settings.RETRIEVAL_BACKENDS[{alias!r}]['HNSW'] = {hnsw!r}: use integers between "
            "2 and 4096 for 'm' and 'ef_construction' (e.g. {'m': 16, 'ef_construction': 64}).")
    quantize = params.get("QUANTIZE") or 0
    if quantize not in QUANTIZE_BITS:
        raise ImproperlyConfigured(
            f"settings.RETRIEVAL_BACKENDS[{alias!r}]['QUANTIZE'] = {quantize!r}: use 0 (float32 "
            "vectors), 7 (lucene 7-bit scalar quantization) or 1 (1-bit).")
    return hnsw, int(quantize)


def _refresh_policy(alias: str, value: object) -> str:
    policy = str(value).lower()
    if policy not in REFRESH_POLICIES:
        raise ImproperlyConfigured(
            f"settings.RETRIEVAL_BACKENDS[{alias!r}]['REFRESH'] = {value!r}: use one of "
            f"{', '.join(REFRESH_POLICIES)}."
        )
    return policy


class OpenSearchBackend(SearchBackend):
    """Scale-out backend: one OpenSearch index behind read/write aliases."""

    supports_vectors = True
    supports_rebuild = True

    def __init__(self, alias: str, params: Mapping[str, object]) -> None:
        super().__init__(alias, params)
        self.url = str(params.get("URL") or "")
        self.index_name = str(params.get("INDEX") or "")
        if not self.url:
            raise ImproperlyConfigured(
                f"settings.RETRIEVAL_BACKENDS[{alias!r}]['URL'] is empty: set it (or "
                "OPENSEARCH_URL) to the node's address, e.g. http://127.0.0.1:9200."
            )
        if not self.index_name or self.index_name != self.index_name.lower() \
                or self.index_name.startswith(("_", "-", "+")):
            raise ImproperlyConfigured(
                f"settings.RETRIEVAL_BACKENDS[{alias!r}]['INDEX'] = {self.index_name!r}: use a "
                "lowercase name that does not start with _, - or + (OPENSEARCH_INDEX)."
            )
        self.read_alias = self.index_name
        self.write_alias = f"{self.index_name}-write"
        self.building_alias = f"{self.index_name}-building"
        self.dimensions = _dimensions(alias, params)
        self.vector_fields = tuple(self.dimensions)
        self.replicas = int(params.get("REPLICAS", 1))
        self.shards = int(params.get("SHARDS", 1))
        self.refresh = _refresh_policy(alias, params.get("REFRESH", "wait_for"))
        self.bulk_size = int(params.get("BULK_SIZE", 500))
        self.candidates = int(params.get("KNN_CANDIDATES", 100))
        self.prefers_server_fusion = bool(params.get("SERVER_FUSION", True))
        self.hnsw, self.quantize = _hnsw(alias, params)
        self.bulk_threads = max(1, int(params.get("BULK_THREADS", 2)))
        self.timeout = float(params.get("TIMEOUT", 30))
        self.client = build_client(alias, params)  # hosts, basic auth, TLS
        self._ready = False
        self._plugins: set[str] | None = None
        self._skipped_fields: set[str] = set()
        self._spaces: dict[str, str] = {}  # concrete index -> its vectors' space type
        self._live: str | None = None  # the read alias's index, as last seen
        self._loads_in_flight: set[Future] = set()  # rebuild batches on their way
        self._loads_lock = threading.Lock()

    # -- errors ----------------------------------------------------------------------------
    @contextmanager
    def _calls(self, what: str) -> Iterator[None]:
        """Turn connection problems and overload into BackendUnavailable."""
        try:
            yield
        except errors.ConnectionError as exc:  # ConnectionTimeout included
            raise BackendUnavailable(
                f"OpenSearch at {self.url} did not answer ({what}: {exc.error}): start it "
                "(`deploy/services opensearch-up`) or fix "
                f"settings.RETRIEVAL_BACKENDS[{self.alias!r}]['URL']."
            ) from exc
        except errors.TransportError as exc:
            if exc.status_code in TRANSIENT_STATUS or _lost_shards(exc):
                raise BackendUnavailable(
                    f"OpenSearch at {self.url} is busy or not ready ({what}: {exc.status_code} "
                    f"{exc.error}); retry in a moment."
                ) from exc
            raise

    # -- indices and aliases ---------------------------------------------------------------
    def ensure_index(self) -> None:
        """Create the first concrete index with its read and write aliases, if none exists."""
        if self._ready:
            return
        with self._calls("ensure_index"):
            if not self.client.indices.exists_alias(name=self.read_alias):
                self._create_first_index()
        self._ready = True

    def _create_first_index(self) -> None:
        if self.client.indices.exists(index=self.read_alias):
            raise ImproperlyConfigured(
                f"{self.read_alias!r} is an OpenSearch index, not an alias: reelsearch reads "
                "through an alias. Delete that index or choose another "
                f"settings.RETRIEVAL_BACKENDS[{self.alias!r}]['INDEX']."
            )
        try:
            self._create(self._new_name(), {self.read_alias: {},
                                            self.write_alias: {"is_write_index": True}})
        except errors.RequestError:
            if not self.client.indices.exists_alias(name=self.read_alias):
                raise  # not a concurrent creator that got there first

    def _create(self, name: str, aliases: dict, building: bool = False) -> None:
        body = index_body(self.dimensions, self.shards, 0 if building else self.replicas,
                          self.hnsw, self.quantize)
        if building:
            body["settings"]["index"].update(LOADING)
        body["aliases"] = aliases
        self.client.indices.create(index=name, body=body)

    def _new_name(self) -> str:
        return f"{self.index_name}-{datetime.now(UTC):%Y%m%d-%H%M%S-%f}"

    def _behind(self, alias: str) -> set[str]:
        """Return the concrete indices an alias points at (none when it does not exist)."""
        with self._calls("alias lookup"):
            found = self.client.indices.get_alias(name=alias, ignore=404)
        return set() if found.get("status") == 404 else set(found)

    def _building(self) -> bool:
        with self._calls("alias lookup"):
            return bool(self.client.indices.exists_alias(name=self.building_alias))

    def _delete_indices(self, names: Iterable[str]) -> None:
        for name in names:
            try:
                with self._calls("delete index"):
                    self.client.indices.delete(index=name, ignore_unavailable=True)
            except (BackendUnavailable, errors.TransportError) as exc:
                logger.warning("could not delete the OpenSearch index %s: %s", name, exc)

    def drop_index(self) -> None:
        """Delete every index behind the aliases (tests, benchmarks, throwaway catalogs)."""
        names = set().union(*(self._behind(a) for a in (
            self.read_alias, self.write_alias, self.building_alias)))
        self._delete_indices(names)
        self._ready, self._live = False, None

    # -- writes ----------------------------------------------------------------------------
    def index(self, docs: Iterable[SegmentDoc]) -> IndexReport:
        """Store or replace documents (in the live index and in one being rebuilt)."""
        docs = list(docs)
        self.ensure_index()
        failed, sources = self._prepare(docs)
        if sources and self._building():  # first: a swap in between must not lose them
            lost = self._bulk(self.building_alias, sources, "false", tolerate_missing=True)
            if lost:
                logger.warning("%d document(s) did not reach the index being rebuilt: %s",
                               len(lost), list(lost.items())[:3])
        failed.update(self._bulk(self.write_alias, sources, self.refresh))
        return IndexReport(indexed=len(docs) - len(failed), failed=failed)

    def _prepare(self, docs: list[SegmentDoc]) -> tuple[dict[str, str], list[tuple[str, dict]]]:
        failed: dict[str, str] = {}
        sources = []
        for doc in docs:
            problem = invalid_document(doc) or self._dimension_problem(doc)
            if problem:
                failed[doc.id] = problem
            else:
                sources.append((doc.id, self._source(doc)))
        return failed, sources

    def _dimension_problem(self, doc: SegmentDoc) -> str:
        for field, vector in doc.vectors.items():
            size, expected = np.asarray(vector).size, self.dimensions.get(field)
            if expected is not None and size != expected:
                return (f"vector {field!r} has dimension {size}, the index holds {expected}: "
                        "re-embed with the index's model or rebuild the index")
        return ""

    def _source(self, doc: SegmentDoc) -> dict:
        filters = doc.filters
        return {
            "id": doc.id, "video_id": doc.video_id, "kind": doc.kind, "start": doc.start,
            "end": doc.end, "text": doc.text,
            "tags": [str(tag).lower() for tag in filters.get("tags", [])],
            "language": str(filters.get("language", "")),
            "duration": float(filters.get("duration", 0.0) or 0.0),
            "published": bool(filters.get("published", True)),
            "vectors": self._vectors(doc),
        }

    def _vectors(self, doc: SegmentDoc) -> dict[str, np.ndarray]:
        """Return the vectors the index maps; unmapped fields and zero vectors are left out."""
        vectors = {}
        for field, vector in doc.vectors.items():
            if field not in self.dimensions:
                if field not in self._skipped_fields:
                    self._skipped_fields.add(field)
                    logger.warning("OpenSearch index %s maps no %r vectors: they are not stored "
                                   "(set REELSEARCH['VISUAL_DIM'] and reindex)",
                                   self.index_name, field)
                continue
            if np.any(np.asarray(vector)):  # cosine is undefined for a zero vector
                vectors[field] = _stored_vector(vector)
        return vectors

    def _bulk(self, target: str, sources: list[tuple[str, dict]], refresh: str,
              tolerate_missing: bool = False) -> dict[str, str]:
        """Send documents to an alias in chunks; return the per-document failures."""
        failed: dict[str, str] = {}
        chunks = list(_batches(sources, self.bulk_size))
        for number, chunk in enumerate(chunks, start=1):
            body = _bulk_body(target, chunk)
            with self._calls("bulk indexing"):
                response = self.client.bulk(  # refresh once, with the last chunk
                    body=body, refresh=refresh if number == len(chunks) else "false",
                    require_alias=True)
            if response.get("errors"):
                failed.update(self._item_failures(response["items"], tolerate_missing))
        return failed

    def _item_failures(self, items: list[dict], tolerate_missing: bool) -> dict[str, str]:
        failed = {}
        for item in items:
            result = item.get("index", {})
            error = result.get("error")
            if not error or (tolerate_missing and error.get("type") == "index_not_found_exception"):
                continue
            if result.get("status") == 429:
                raise BackendUnavailable(f"OpenSearch at {self.url} rejected documents (queue "
                                         "full); retry in a moment.")
            failed[result.get("_id", "")] = _reason(error)
        return failed

    def delete_video(self, video_id: str) -> None:
        """Remove every segment of a video (from the live index and one being rebuilt)."""
        self._delete_where({"term": {"video_id": video_id}})

    def clear(self) -> None:
        """Remove every document."""
        self._delete_where({"match_all": {}})

    def _delete_where(self, query: dict) -> None:
        self.ensure_index()
        # a rebuild batch still in flight would bring back what is deleted now: wait for it
        with self._loads_lock:
            in_flight = list(self._loads_in_flight)
        wait_for_futures(in_flight)
        targets = ([self.building_alias] if self._building() else []) + [self.write_alias]
        for target in targets:
            with self._calls("delete by query"):
                try:  # refresh first: delete_by_query only sees searchable documents
                    self.client.indices.refresh(index=target)
                    self.client.delete_by_query(
                        index=target, body={"query": query}, conflicts="proceed",
                        refresh=target == self.write_alias and self.refresh != "false")
                except errors.NotFoundError:
                    if target == self.write_alias:
                        raise

    def rebuild(self, docs: Iterable[SegmentDoc], batch_size: int | None = None) -> IndexReport:
        """Load docs into a new index, then swap the aliases onto it in one atomic call."""
        self.ensure_index()
        self._delete_indices(self._behind(self.building_alias) - self._behind(self.read_alias))
        name = self._new_name()
        with self._calls("create index"):
            self._create(name, {self.building_alias: {}}, building=True)
        try:
            report = self._load(docs, batch_size or self.bulk_size)
            old = self._swap_in(name)
        except BaseException:
            self._abandon(name)
            raise
        self._delete_indices(old - {name})
        return report

    def _abandon(self, name: str) -> None:
        """Delete a half-built index (and with it the building alias), unless it went live."""
        try:
            if name not in self._behind(self.read_alias):
                self._delete_indices([name])
        except BackendUnavailable as exc:
            logger.warning("could not delete the half-built index %s (%s): the next rebuild "
                           "deletes it", name, exc)

    def _load(self, docs: Iterable[SegmentDoc], batch_size: int) -> IndexReport:
        """Bulk-load batches, BULK_THREADS requests in flight (one node write thread each)."""
        indexed, failed = 0, {}

        def load_batch(batch: list[SegmentDoc]) -> tuple[int, dict[str, str]]:
            invalid, sources = self._prepare(batch)
            rejected = self._bulk(self.building_alias, sources, "false")
            return len(batch) - len(invalid) - len(rejected), {**invalid, **rejected}

        with ThreadPoolExecutor(self.bulk_threads, thread_name_prefix="bulk") as pool:
            pending: deque[Future] = deque()
            for batch in _batches(docs, batch_size):
                future = pool.submit(load_batch, batch)
                with self._loads_lock:
                    self._loads_in_flight.add(future)
                future.add_done_callback(self._load_landed)
                pending.append(future)
                while len(pending) >= self.bulk_threads:  # bounded: docs may be a generator
                    done, problems = pending.popleft().result()
                    indexed, failed = indexed + done, {**failed, **problems}
            for future in pending:
                done, problems = future.result()
                indexed, failed = indexed + done, {**failed, **problems}
        return IndexReport(indexed=indexed, failed=failed)

    def _load_landed(self, future: Future) -> None:
        with self._loads_lock:
            self._loads_in_flight.discard(future)

    def _swap_in(self, name: str) -> set[str]:
        """Make a loaded index the live one; return the indices it replaced."""
        with self._calls("alias swap"):
            # commit first, twice: a replica copies the files of the last safe commit and
            # replays (indexes again) every operation after it; the load's global checkpoint
            # is persisted by the first commit, so only the second one is safe
            self.client.indices.flush(index=name)
            self.client.indices.flush(index=name, force=True)
            self.client.indices.put_settings(index=name, body={"index": {
                **dict.fromkeys(LOADING), "number_of_replicas": self.replicas}})
            self.client.indices.refresh(index=name)
            self._wait_for_replicas(name)
        behind = {alias: self._behind(alias) for alias in (self.read_alias, self.write_alias)}
        actions = [{"remove": {"index": index, "alias": alias}}
                   for alias, indices in behind.items() for index in sorted(indices)]
        actions += [
            {"remove": {"index": name, "alias": self.building_alias}},
            {"add": {"index": name, "alias": self.read_alias}},
            {"add": {"index": name, "alias": self.write_alias, "is_write_index": True}},
        ]
        with self._calls("alias swap"):
            self.client.indices.update_aliases(body={"actions": actions})
        self._live = name
        return set().union(*behind.values())

    def _wait_for_replicas(self, name: str) -> None:
        """Wait until the new index's replicas are copied, when the cluster can hold them."""
        health = self.client.cluster.health()
        if self.replicas == 0 or self.replicas >= int(health["number_of_data_nodes"]):
            return  # a single node never places a replica: the index stays yellow
        health = self.client.cluster.health(  # "timeout" as a keyword is the client's
            index=name, wait_for_status="green", params={"timeout": f"{int(self.timeout)}s"},
            request_timeout=self.timeout + 10)
        if health.get("timed_out"):
            raise BackendUnavailable(
                f"the replicas of the rebuilt index {name} were not ready within "
                f"{int(self.timeout)}s (status {health.get('status')}); the live index was "
                "left as it was: run the rebuild again when the cluster is green.")

    # -- reads -----------------------------------------------------------------------------
    def _search(self, body: dict, what: str) -> list[dict]:
        """Search the read alias; retry once when the index went away under the query.

        A rebuild deletes the old index right after the alias swap: a query that resolved
        the alias just before can find its index gone (404) or its shard closed (503).
        """
        self.ensure_index()
        with self._calls(what):  # partial results (a shard lost with its node) are an error
            try:
                response = self.client.search(index=self.read_alias, body=body,
                                              allow_partial_search_results=False)
            except errors.TransportError as exc:
                if exc.status_code not in (404, 503):
                    raise
                self._ready, self._live = False, None
                self.ensure_index()
                response = self.client.search(index=self.read_alias, body=body,
                                              allow_partial_search_results=False)
        return response["hits"]["hits"]

    def count(self) -> int:
        """Return the number of stored segments."""
        self.ensure_index()
        with self._calls("count"):
            return int(self.client.count(index=self.read_alias)["count"])

    @staticmethod
    def _match(terms: list[str], filters: dict | None, fuzzy: Sequence[str] = ()) -> dict:
        """Build the BM25 query: any of the terms; those in fuzzy within their edit budget.

        A fuzzy term gets a clause of its own (fuzziness from retrieval.typos, on the query
        term's length); the others share one match, so their scores add up as before.
        """
        exact = [term for term in terms if term not in fuzzy]
        clauses = [{"match": {"text": {"query": " ".join(exact)}}}] if exact else []
        clauses += [{"match": {"text": {"query": term, "fuzziness": max_edits(term),
                                        "prefix_length": 0, "max_expansions": MAX_EXPANSIONS,
                                        "fuzzy_transpositions": True}}}
                    for term in terms if term in fuzzy]
        match = clauses[0] if len(clauses) == 1 else {"bool": {"should": clauses,
                                                               "minimum_should_match": 1}}
        return {"bool": {"must": [match], "filter": [filters]}} if filters else match

    def bm25(self, text: str, k: int, filters: Filters = Filters(),
             fuzzy: Sequence[str] = ()) -> list[Hit]:
        """Rank segments by BM25 over the English-analyzed text, filtered in the same query."""
        terms = query_terms(text)
        if not terms or k <= 0:
            return []
        body = {"size": k, "query": self._match(terms, filter_query(filters), fuzzy), **RANKED,
                "_source": ["video_id", "text"]}  # the text: coverage needs no catalog query
        return [Hit(h["_id"], h["_source"]["video_id"], float(h["_score"]),
                    h["_source"].get("text"))
                for h in self._search(body, "BM25 search")]

    def term_counts(self, terms: Sequence[str], filters: Filters = Filters(),
                    cap: int = 10) -> dict[str, int]:
        """Return how many segments (passing filters) hold each term: one filter agg each."""
        if not terms:
            return {}
        where = filter_query(filters)
        body: dict = {"size": 0, "track_total_hits": False, "aggs": {
            f"t{n}": {"filter": {"match": {"text": {"query": term}}}}
            for n, term in enumerate(terms)}}
        if where:
            body["query"] = where
        self.ensure_index()
        with self._calls("term counts"):
            response = self.client.search(index=self.read_alias, body=body,
                                          allow_partial_search_results=False)
        aggs = response["aggregations"]
        return {term: min(cap, int(aggs[f"t{n}"]["doc_count"])) for n, term in enumerate(terms)}

    def _knn_query(self, field: str, vector: np.ndarray, k: int, filters: dict | None) -> dict:
        """Build a k-NN query on a vector field with the filters inside it.

        Lucene's HNSW search explores k candidates: asking for at least KNN_CANDIDATES keeps
        a small k from stopping in a local optimum; the search's size cuts the answer to k.
        """
        expected = self.dimensions[field]
        vector = np.asarray(vector, dtype=np.float64).reshape(-1)
        if vector.shape[0] != expected:
            raise ValueError(f"query vector has dimension {vector.shape[0]}, the index holds "
                             f"{expected}")
        knn: dict = {"vector": unit_vector(vector, np.float64).tolist(),
                     "k": max(k, self.candidates)}
        if filters:
            knn["filter"] = filters
        return {"knn": {f"vectors.{field}": knn}}

    def _space(self, index: str) -> str:
        """Return the vector space of a concrete index (its mapping, read once per index)."""
        space = self._spaces.get(index)
        if space is None:
            with self._calls("mapping lookup"):
                found = self.client.indices.get_mapping(index=index)
            fields = (found[index]["mappings"]["properties"].get("vectors", {})
                      .get("properties", {}))
            spaces = {str(f.get("method", {}).get("space_type")) for f in fields.values()}
            space = self._spaces[index] = ("cosinesimil" if "cosinesimil" in spaces
                                           else "innerproduct")
        return space

    def _live_index(self) -> str:
        """Return the concrete index the read alias points at (remembered; hits correct it)."""
        if not self._live:  # none while the alias is missing: the hits will say
            self._live = min(self._behind(self.read_alias), default="")
        return self._live

    def knn(
        self, field: str, vector: np.ndarray, k: int, filters: Filters = Filters()
    ) -> list[Hit]:
        """Return the k nearest segments by cosine (lucene HNSW), filters inside the search."""
        if k <= 0 or field not in self.dimensions:
            return []
        query = self._knn_query(field, vector, k, filter_query(filters))
        if not np.any(vector):
            return []
        hits = self._search({"size": k, "query": query, **RANKED}, "k-NN search")
        return [Hit(h["_id"], h["_source"]["video_id"],
                    _cosine(self._space(h["_index"]), float(h["_score"])))
                for h in hits]

    def facet_counts(self, video_ids: Sequence[str], names: Sequence[str]
                     ) -> dict[str, dict[str, int]]:
        """Count these videos per tag, language and duration bucket, by aggregations.

        Each bucket counts distinct video ids (cardinality, exact below its precision
        threshold, which is above any result set's size), since every segment of a video
        carries the video's tags, language and duration.
        """
        aggs = {name: {**FACET_AGGS[name], "aggs": {"videos": VIDEO_COUNT}}
                for name in names if name in FACET_AGGS}
        if not aggs or not video_ids:
            return {name: {} for name in aggs}
        body = {"size": 0, "query": {"bool": {"filter": [
            {"terms": {"video_id": list(video_ids)}}]}}, "aggs": aggs}
        self.ensure_index()
        with self._calls("facet counts"):
            response = self.client.search(index=self.read_alias, body=body,
                                          allow_partial_search_results=False)
        return {name: {str(b["key"]): int(b["videos"]["value"])
                       for b in response["aggregations"][name]["buckets"]
                       if b["videos"]["value"] > 0 and b["key"] != ""}
                for name in aggs}

    def vectors_for_video(self, video_id: str, field: str = "text") -> np.ndarray:
        """Return the normalized vectors of a video's segments."""
        body = {"size": 10_000, "query": {"bool": {"filter": [{"term": {"video_id": video_id}}]}},
                "sort": [{"start": "asc"}, {"id": "asc"}], "_source": [f"vectors.{field}"]}
        rows = [h["_source"].get("vectors", {}).get(field)
                for h in self._search(body, "vector lookup")]
        rows = [row for row in rows if row is not None]
        if not rows:
            return np.zeros((0, self.dimensions.get(field, 1)), dtype=np.float32)
        matrix = np.asarray(rows, dtype=np.float32)
        return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)

    # -- server-side fusion ----------------------------------------------------------------
    @property
    def supports_server_fusion(self) -> bool:
        """Return True when the node has the neural-search plugin (hybrid query)."""
        if self._plugins is None:
            try:
                with self._calls("plugin list"):
                    rows = self.client.cat.plugins(format="json")
            except BackendUnavailable:
                return False
            self._plugins = {str(row.get("component", "")) for row in rows}
        return any("neural" in name.lower() for name in self._plugins)

    def server_fusion_problem(self, spec: FusionSpec, signals: Iterable[str]) -> str:
        """Return why the node cannot fuse these signals with this spec ("" if it can)."""
        names = [name for name in signals if name == "bm25" or name in self.dimensions]
        if not self.supports_server_fusion:
            return f"the OpenSearch node at {self.url} has no neural-search plugin"
        if spec.rescore or spec.coverage:
            return "re-scoring and the BM25 coverage gate need each signal's own hits"
        if names and not any(spec.weight(name) > 0 for name in names):
            return "every signal has weight 0"
        if spec.method == "rrf":
            return ""
        if spec.normalization == "z_score":
            return ("OpenSearch's z_score sets every score at or below the mean to 0.001 and "
                    "a segment a signal did not return to 0, where retrieval/fusion.py keeps "
                    "negative z-scores: the rankings differ")
        return ""

    @staticmethod
    def _pipeline(spec: FusionSpec, names: list[str]) -> dict:
        """Build the temporary search pipeline that fuses the hybrid query's sub-queries.

        Weights go to the node normalized to a sum of 1 (it requires that); for rrf the caller
        scales the fused scores back by their sum. Lower bounds are ``clip`` bounds, in the
        node's units: lucene's ``(1 + cos) / 2`` for k-NN signals (min-max is unchanged by
        that affine map when the bound moves with it).
        """
        weights = [spec.weight(name) for name in names]
        shares = [weight / sum(weights) for weight in weights]
        if spec.method == "rrf":
            processor = {"score-ranker-processor": {"combination": {
                "technique": "rrf", "rank_constant": spec.rank_constant,
                "parameters": {"weights": shares}}}}
            return {"phase_results_processors": [processor]}
        normalization: dict = {"technique": spec.normalization}
        if spec.lower_bounds:
            normalization["parameters"] = {"lower_bounds": [
                {"mode": "clip", "min_score": _node_units(name, spec.lower_bounds[name])}
                if name in spec.lower_bounds else {"mode": "ignore"} for name in names]}
        processor = {"normalization-processor": {
            "normalization": normalization,
            "combination": {"technique": COMBINATIONS[spec.method],
                            "parameters": {"weights": shares}},
        }}
        return {"phase_results_processors": [processor]}

    def hybrid(
        self, text: str, vectors: Mapping[str, np.ndarray], k: int, filters: Filters,
        spec: FusionSpec, fuzzy: Sequence[str] = (),
    ) -> list[ScoredSegment]:
        """Fuse BM25 (when text has terms) and k-NN per vector field on the server.

        Every sub-query fetches k hits; scores are normalized over those windows, so pass
        the same window as the client-side path to get the same ranking. Server-side ``l2``
        normalizes lucene's ``(1 + cos) / 2`` k-NN scores, not the cosine.
        """
        problem = self.server_fusion_problem(spec, ["bm25", *vectors])
        if problem:
            raise NotImplementedError(f"{self.name} cannot fuse on the server: {problem}")
        if k <= 0:
            return []
        where = filter_query(filters)
        terms = query_terms(text) if text else []
        names, queries = (["bm25"], [self._match(terms, where, fuzzy)]) if terms else ([], [])
        fields = [field for field in sorted(vectors, key=lambda f: (f not in SIGNAL_ORDER, f))
                  if field in self.dimensions and np.any(vectors[field])]
        knn = [self._knn_query(field, vectors[field], k, where) for field in fields]
        if not queries and not knn:
            return []
        names += fields
        scale = sum(spec.weight(name) for name in names) if spec.method == "rrf" else 1.0
        pipeline = self._pipeline(spec, names)
        self.ensure_index()
        for _ in range(2):  # the k-NN units depend on the live index: a swap may move it
            index = self._live_index()
            if knn and index and self._space(index) != "cosinesimil":
                scored = [{"script_score": {"query": query, "script": HALF_COSINE}}
                          for query in knn]
            else:
                scored = knn
            body = {"size": k, "query": {"hybrid": {"queries": queries + scored}},
                    "_source": ["video_id"], "search_pipeline": pipeline}
            hits = self._search(body, "hybrid search")
            if all(h["_index"] == index for h in hits):
                break
            self._live = hits[0]["_index"]
        return [ScoredSegment(h["_id"], h["_source"]["video_id"], float(h["_score"]) * scale,
                              MappingProxyType({}))
                for h in hits]

    def close(self) -> None:
        """Close the HTTP connections."""
        self.client.close()
