#!/usr/bin/env python3
"""Smoke test for a running node (see run-node): k-NN, aliases, reindex, neural-search.

    python3 deploy/opensearch/smoke_check.py [BASE_URL]     (default http://127.0.0.1:9250)

Standard library only. Creates and deletes the indices smoke-videos-* and smoke-guard, the alias
smoke-videos and the search pipelines smoke-minmax / smoke-rrf. Exits non-zero on the first
failed check. The request bodies here are the reference examples for the project.
"""

import json
import sys
import urllib.error
import urllib.request

BASE = (sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:9250").rstrip("/")

INDEX_BODY = {
    "settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0, "knn": True}},
    "aliases": {"smoke-videos": {}},
    "mappings": {
        "properties": {
            "title": {"type": "text", "analyzer": "english"},
            "category": {"type": "keyword"},
            "year": {"type": "integer"},
            "embedding": {
                "type": "knn_vector",
                "dimension": 4,
                # always name the engine: the default (faiss) needs native libraries
                "method": {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil"},
            },
        }
    },
}

DOCS = [
    ("1", "Cooking pasta with fresh tomatoes", "food", 2021, [0.9, 0.1, 0.0, 0.1]),
    ("2", "Running shoes review for marathon runners", "sport", 2022, [0.1, 0.9, 0.1, 0.0]),
    ("3", "Baking bread and cooking soup at home", "food", 2023, [0.8, 0.2, 0.1, 0.0]),
    ("4", "Mountain cycling adventure", "sport", 2020, [0.2, 0.7, 0.5, 0.1]),
    ("5", "Street food tour: cooked noodles", "travel", 2024, [0.7, 0.1, 0.3, 0.3]),
]


def call(method, path, body=None, ndjson=False, ok=(200, 201)):
    data = None
    headers = {}
    if body is not None:
        if ndjson:
            data = ("\n".join(json.dumps(line) for line in body) + "\n").encode()
            headers["Content-Type"] = "application/x-ndjson"
        else:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
    # BASE is the node's http:// URL given on the command line
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read().decode()
    if status not in ok:
        raise AssertionError(f"{method} {path} -> {status}: {text[:500]}")
    return json.loads(text) if text else {}


def ids(resp):
    return [hit["_id"] for hit in resp["hits"]["hits"]]


def check(name, cond, detail):
    if not cond:
        raise AssertionError(f"{name}: {detail}")
    print(f"ok   {name}: {detail}")


def main():
    for index in ("smoke-videos-v1", "smoke-videos-v2"):
        call("DELETE", f"/{index}", ok=(200, 404))
    for pipeline in ("smoke-minmax", "smoke-rrf"):
        call("DELETE", f"/_search/pipeline/{pipeline}", ok=(200, 404))

    # index created together with its alias; everything below goes through the alias
    call("PUT", "/smoke-videos-v1", INDEX_BODY)
    bulk = []
    for doc_id, title, category, year, vector in DOCS:
        bulk.append({"index": {"_id": doc_id}})
        bulk.append({"title": title, "category": category, "year": year, "embedding": vector})
    resp = call("POST", "/smoke-videos/_bulk?refresh=true", bulk, ndjson=True)
    check("bulk", not resp["errors"], f"{len(resp['items'])} docs")

    resp = call("POST", "/smoke-videos/_search", {"query": {"match": {"title": "cooking"}}})
    check("match (BM25, english stemming)", set(ids(resp)) == {"1", "3", "5"}, ids(resp))

    resp = call(
        "POST",
        "/smoke-videos/_search",
        {
            "size": 3,
            "query": {"knn": {"embedding": {"vector": [1, 0, 0, 0], "k": 3}}},
        },
    )
    check("knn", ids(resp) == ["1", "3", "5"], ids(resp))

    resp = call(
        "POST",
        "/smoke-videos/_search",
        {
            "size": 3,
            "query": {
                "knn": {
                    "embedding": {
                        "vector": [1, 0, 0, 0],
                        "k": 3,
                        "filter": {
                            "bool": {
                                "must": [
                                    {"term": {"category": "food"}},
                                    {"range": {"year": {"gte": 2022}}},
                                ]
                            }
                        },
                    }
                }
            },
        },
    )
    check("knn with efficient filter", ids(resp) == ["3"], ids(resp))

    resp = call(
        "POST",
        "/smoke-videos/_search",
        {
            "size": 3,
            "query": {
                "script_score": {
                    "query": {"term": {"category": "sport"}},
                    "script": {
                        "lang": "knn",
                        "source": "knn_score",
                        "params": {
                            "field": "embedding",
                            "query_value": [0, 1, 0, 0],
                            "space_type": "cosinesimil",
                        },
                    },
                }
            },
        },
    )
    check("exact knn_score (script_score)", ids(resp) == ["2", "4"], ids(resp))

    # k-NN's painless functions: present because the launcher preloads painless extensions
    resp = call(
        "POST",
        "/smoke-videos/_search",
        {
            "size": 1,
            "query": {
                "script_score": {
                    "query": {"match_all": {}},
                    "script": {
                        "source": "1.0 + cosineSimilarity(params.q, doc[params.f])",
                        "params": {"q": [0, 1, 0, 0], "f": "embedding"},
                    },
                }
            },
        },
    )
    check("painless cosineSimilarity", ids(resp) == ["2"], ids(resp))

    # blue/green: new index, _reindex, atomic alias swap
    mappings = call("GET", "/smoke-videos-v1/_mapping")["smoke-videos-v1"]["mappings"]
    call("PUT", "/smoke-videos-v2", {"settings": INDEX_BODY["settings"], "mappings": mappings})
    resp = call(
        "POST",
        "/_reindex?refresh=true",
        {"source": {"index": "smoke-videos-v1"}, "dest": {"index": "smoke-videos-v2"}},
    )
    check("_reindex", resp["created"] == len(DOCS), f"created {resp['created']}")
    call(
        "POST",
        "/_aliases",
        {
            "actions": [
                {"remove": {"index": "smoke-videos-v1", "alias": "smoke-videos"}},
                {"add": {"index": "smoke-videos-v2", "alias": "smoke-videos"}},
            ]
        },
    )
    resp = call("GET", "/_alias/smoke-videos")
    check("atomic alias swap", list(resp) == ["smoke-videos-v2"], list(resp))

    # neural-search: hybrid query + search pipelines
    call(
        "PUT",
        "/_search/pipeline/smoke-minmax",
        {
            "phase_results_processors": [
                {
                    "normalization-processor": {
                        "normalization": {"technique": "min_max"},
                        "combination": {
                            "technique": "arithmetic_mean",
                            "parameters": {"weights": [0.3, 0.7]},
                        },
                    }
                }
            ],
        },
    )
    call(
        "PUT",
        "/_search/pipeline/smoke-rrf",
        {
            "phase_results_processors": [
                {
                    "score-ranker-processor": {
                        "combination": {"technique": "rrf", "rank_constant": 60},
                    }
                }
            ],
        },
    )
    hybrid = {
        "size": 5,
        "query": {
            "hybrid": {
                "queries": [
                    {"match": {"title": "cooking"}},
                    {"knn": {"embedding": {"vector": [0.1, 0.9, 0.1, 0.0], "k": 3}}},
                ]
            }
        },
    }
    resp = call("POST", "/smoke-videos/_search?search_pipeline=smoke-minmax", hybrid)
    top = resp["hits"]["hits"][0]
    check(
        "hybrid + normalization-processor",
        top["_id"] == "2" and abs(top["_score"] - 0.7) < 1e-6,
        [(h["_id"], round(h["_score"], 4)) for h in resp["hits"]["hits"]],
    )
    resp = call("POST", "/smoke-videos/_search?search_pipeline=smoke-rrf", hybrid)
    top = resp["hits"]["hits"][0]
    check(
        "hybrid + score-ranker-processor (rrf)",
        top["_id"] == "3" and abs(top["_score"] - (1 / 62 + 1 / 63)) < 1e-4,
        [(h["_id"], round(h["_score"], 4)) for h in resp["hits"]["hits"]],
    )

    # the dev node's guard: a knn_vector without engine lucene is refused with a 400
    # instead of hanging on the missing faiss library (a full distribution accepts it)
    call("DELETE", "/smoke-guard", ok=(200, 404))
    resp = call(
        "PUT",
        "/smoke-guard",
        {
            "settings": {"index": {"knn": True, "number_of_replicas": 0}},
            "mappings": {"properties": {"v": {"type": "knn_vector", "dimension": 2}}},
        },
        ok=(200, 400),
    )
    if "error" in resp:
        check(
            "guard refuses engine-less knn_vector",
            "lucene" in resp["error"]["reason"],
            resp["error"]["type"],
        )
    else:
        call("DELETE", "/smoke-guard")
        print("skip guard: this node accepts the faiss engine")

    for index in ("smoke-videos-v1", "smoke-videos-v2"):
        call("DELETE", f"/{index}")
    for pipeline in ("smoke-minmax", "smoke-rrf"):
        call("DELETE", f"/_search/pipeline/{pipeline}")
    print("smoke test passed")


if __name__ == "__main__":
    try:
        main()
    except (AssertionError, urllib.error.URLError) as exc:
        print(f"FAIL {exc}", file=sys.stderr)
        sys.exit(1)
