"""gunicorn settings for the web and search API: `gunicorn -c deploy/gunicorn.conf.py deploy.wsgi`.

One process per core, each with a few threads: a search is mostly numpy, SQLite and
onnxruntime work that releases the GIL, and requests wait on each other little. Every
worker loads the text model and the index's vectors before it accepts a request, so the
first searches do not pay for them. Override with GUNICORN_BIND, GUNICORN_WORKERS,
GUNICORN_THREADS and GUNICORN_KEEPALIVE.

A kept-alive connection stays with the worker that accepted it, and busy clients (or a
proxy's pooled connections) need not split evenly over the workers: 50 clients once split
14/36, and the 36 waited 2.6 times as long. GUNICORN_KEEPALIVE=0 closes each response's
connection, so that every request goes to whichever worker accepts it first; on loopback it
cost no throughput but did not lower the p99 either (README, "Search API under load").
"""

import os

# One intra-op thread per call: concurrent requests use the other cores, and on a busy
# machine spinning thread pools make a short query many times slower.
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", str(os.cpu_count() or 2)))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
backlog = 256
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))  # seconds; 0: close each
timeout = 120
graceful_timeout = 30


def post_worker_init(worker) -> None:
    """Load the text model and the index's vectors before the first request."""
    from retrieval.backends import get_backend
    from retrieval.encoders import get_text_encoder

    get_text_encoder().encode_query("warm up")
    backend = get_backend()
    if getattr(backend, "supports_vectors", False):
        try:
            backend.knn("text", get_text_encoder().encode_query("warm up"), 1)
        except Exception as exc:  # an empty or unreachable index: requests will say so
            worker.log.warning("could not warm the search index: %s", exc)
