"""Evaluate text-to-video and moment retrieval on a manifest of clips with known answers.

A manifest is JSON lines, one clip per line::

    {"clip_id": "c1", "file": "clips/c1.mp4", "captions": ["a query", ...],
     "moments": [{"query": "...", "start": 3.2, "end": 9.8}],          # optional
     "title": "...", "description": "...", "tags": [...]}              # optional

``file`` is relative to the manifest. Every caption is a query whose relevant video is its
clip (identical captions of several clips become one query with several relevant videos);
every moment is a query whose answer is that span of its clip.

Steps: ``load_manifest`` checks each line; ``prepare_catalog`` registers the clips with
``workers.ingest.register`` (a clip already ready with the same SHA-256 is reused) and
runs the pipeline in-process; ``run_evaluation`` asks ``retrieval.search.search`` every
query under each configuration (single signals, each fusion method) and computes the
metrics of ``evaluation.metrics``. A clip that cannot be evaluated (bad manifest line,
missing file, failed ingestion) is excluded with its reason, and so are its queries: it is
never counted as a hit or a miss, and it is not in the catalog the ranks are counted over.

Clip metadata comes from the manifest; without a ``title`` a neutral one ("clip 7") is
used, so that file names and clip ids do not leak the answer into the metadata segment.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from catalog.models import Video, VideoStatus
from retrieval import search as search_service
from retrieval.fusion import FusionSpec
from retrieval.profiles import DEFAULT as DEFAULT_PROFILE
from retrieval.profiles import get_profile
from retrieval.search import MAX_K, SearchRequest, SearchResponse

from . import metrics

Log = Callable[[str], None]
SIGNAL_LABELS = {"bm25": "BM25 only", "text": "text-dense only", "visual": "visual-dense only"}
DEFAULT_FUSIONS = ("arithmetic/min_max", "geometric/min_max", "harmonic/min_max",
                   "arithmetic/z_score", "arithmetic/l2", "rrf",
                   "arithmetic/min_max/bm25=0.3", "arithmetic/z_score/bm25=0.3",
                   "arithmetic/min_max/bm25=0.3/coverage=3",
                   "arithmetic/z_score/bm25=1/coverage=3",
                   "arithmetic/z_score/bm25=0.3/coverage=3,dual_softmax")
VISUAL_MODEL_SETTINGS = ("VISUAL_MODEL", "VISUAL_MODEL_PATH", "CLIP_MODEL", "CLIP_MODEL_PATH")


class ManifestError(ValueError):
    """The manifest cannot be read at all (a bad line only excludes that clip)."""


@dataclass(frozen=True)
class MomentQuery:
    """A query answered by a span of one clip."""

    query: str
    start: float
    end: float
    kind: str = ""  # e.g. "part" or "sentence": reported separately


@dataclass(frozen=True)
class Clip:
    """One manifest entry that passed validation."""

    clip_id: str
    file: str
    path: Path
    captions: tuple[str, ...]
    moments: tuple[MomentQuery, ...]
    metadata: dict


@dataclass(frozen=True)
class Exclusion:
    """A clip left out of the evaluation, and why."""

    clip_id: str
    file: str
    reason: str


@dataclass
class Manifest:
    """The clips of a manifest that can be ingested, and the lines that could not."""

    path: Path
    clips: list[Clip] = field(default_factory=list)
    excluded: list[Exclusion] = field(default_factory=list)
    no_answer: list[str] = field(default_factory=list)  # queries nothing should answer


@dataclass(frozen=True)
class Query:
    """One evaluated query: its text, relevant videos and, for moment queries, the span."""

    text: str
    targets: tuple[str, ...]
    clip_ids: tuple[str, ...]
    span: tuple[float, float] | None = None
    moment_kind: str = ""


@dataclass(frozen=True)
class Configuration:
    """A way of answering queries: which signals, fused how (profile: a named profile)."""

    key: str
    label: str
    signals: tuple[str, ...]
    fusion: FusionSpec
    kind: str  # "signal" or "fusion"
    profile: str | None = None  # set: ask with no fusion, as the API's default does


@dataclass(frozen=True)
class Outcome:
    """What one configuration did with one query."""

    ranks: tuple[int, ...]
    latency_ms: float
    found: bool
    top_iou: float | None = None
    target_iou: float | None = None
    steps_ms: dict = field(default_factory=dict)
    target_tier: str | None = None  # tier of the first relevant video (None: not returned)
    top_tier: str | None = None  # tier of the first result (None: no result)


# --------------------------------------------------------------------------- manifest


def load_manifest(path: Path) -> Manifest:
    """Read and check a JSON-lines manifest; bad lines become exclusions."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"Cannot read the manifest {path}: {exc}.") from exc
    manifest = Manifest(path)
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if _no_answer_line(line, manifest):
            continue
        try:
            clip = _parse_entry(json.loads(line), path.parent, len(manifest.clips) + 1)
        except (ValueError, TypeError) as exc:
            entry = _loose(line)
            manifest.excluded.append(Exclusion(str(entry.get("clip_id") or f"line {number}"),
                                               str(entry.get("file") or ""),
                                               f"manifest line {number}: {exc}"))
            continue
        if clip.clip_id in seen:
            manifest.excluded.append(Exclusion(clip.clip_id, clip.file, f"manifest line "
                                               f"{number}: clip_id is used by an earlier line"))
            continue
        seen.add(clip.clip_id)
        manifest.clips.append(clip)
    if not manifest.clips and not manifest.excluded:
        raise ManifestError(f"The manifest {path} has no entries: write one JSON object per "
                            "line with clip_id, file and captions.")
    return manifest


def _no_answer_line(line: str, manifest: Manifest) -> bool:
    """Take a {"no_answer": [queries]} line (queries nothing in the catalog answers)."""
    entry = _loose(line)
    queries = entry.get("no_answer")
    if "clip_id" in entry or not isinstance(queries, list):
        return False
    manifest.no_answer += [q.strip() for q in queries if isinstance(q, str) and q.strip()]
    return True


def _loose(line: str) -> dict:
    try:
        entry = json.loads(line)
    except ValueError:
        return {}
    return entry if isinstance(entry, dict) else {}


def _text(entry: dict, name: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    return value.strip()


def _parse_entry(entry: object, root: Path, position: int) -> Clip:
    if not isinstance(entry, dict):
        raise ValueError("expected a JSON object")
    clip_id, file = _text(entry, "clip_id"), _text(entry, "file")
    captions = entry.get("captions", [])
    if not isinstance(captions, list) or not all(isinstance(c, str) and c.strip()
                                                 for c in captions):
        raise ValueError("captions must be a list of non-empty strings")
    moments = tuple(_parse_moment(m) for m in entry.get("moments") or [])
    if not captions and not moments:
        raise ValueError("no captions and no moments: nothing to ask")
    tags = entry.get("tags") or []
    metadata = {"title": str(entry.get("title") or f"clip {position}"),
                "description": str(entry.get("description") or ""),
                "tags": [str(tag) for tag in tags] if isinstance(tags, list) else [str(tags)]}
    return Clip(clip_id, file, root / file, tuple(c.strip() for c in captions), moments,
                metadata)


def _parse_moment(raw: object) -> MomentQuery:
    if not isinstance(raw, dict):
        raise ValueError("each moment must be an object with query, start and end")
    try:
        start, end = float(raw["start"]), float(raw["end"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("each moment needs numeric start and end") from None
    if not 0 <= start < end:
        raise ValueError(f"moment {start}-{end}: need 0 <= start < end")
    return MomentQuery(_text(raw, "query"), start, end, str(raw.get("kind") or ""))


# --------------------------------------------------------------------------- catalog


def prepare_catalog(manifest: Manifest, *, throwaway: bool, log: Log) -> dict[str, str]:
    """Ingest every clip (reusing ready ones); return clip_id -> video id of the ready ones.

    Clips that cannot be used are appended to ``manifest.excluded``. With ``throwaway``
    (the catalog belongs to this evaluation) videos not in the manifest are deleted and a
    clip whose manifest metadata changed is ingested again.
    """
    from workers import pipeline  # evaluation builds its own catalog; search never does
    from workers.ingest import register, sha256_of

    if not settings.CELERY_TASK_ALWAYS_EAGER:
        raise RuntimeError("Evaluation runs the pipeline in-process: unset CELERY_BROKER_URL "
                           "(the evaluate command does this for its throwaway catalog).")
    ready: dict[str, str] = {}
    owner: dict[str, str] = {}  # sha256 -> clip_id
    for clip in manifest.clips:
        if not clip.path.is_file():
            _exclude(manifest, clip, f"file not found: {clip.file}", log)
            continue
        digest = sha256_of(clip.path)
        if digest in owner:
            _exclude(manifest, clip, f"same file as clip {owner[digest]}", log)
            continue
        owner[digest] = clip.clip_id
        if throwaway:
            _drop_if_metadata_changed(digest, clip.metadata)
        outcome = register(clip.path, clip.metadata)
        video = outcome.video
        if video is None:
            _exclude(manifest, clip, outcome.message or "could not be registered", log)
            continue
        if video.status == VideoStatus.PENDING:  # no on-commit run (e.g. inside a transaction)
            pipeline.process(str(video.pk))
        video.refresh_from_db()
        if video.status != VideoStatus.READY:
            reason = video.error or f"not ready (status {video.status}, stage {video.stage})"
            _exclude(manifest, clip, f"ingestion failed: {reason}", log)
            continue
        ready[clip.clip_id] = str(video.pk)
        log(f"✓ {clip.clip_id}: {'reused' if outcome.action == 'skipped' else 'ingested'}")
    if throwaway:
        for video in Video.objects.exclude(sha256__in=list(owner)):
            video.source.delete(save=False)
            video.delete()
    return ready


def _exclude(manifest: Manifest, clip: Clip, reason: str, log: Log) -> None:
    manifest.excluded.append(Exclusion(clip.clip_id, clip.file, reason))
    log(f"✗ {clip.clip_id}: excluded ({reason})")


def _drop_if_metadata_changed(digest: str, metadata: dict) -> None:
    for video in Video.objects.filter(sha256=digest):
        current = {"title": video.title, "description": video.description,
                   "tags": list(video.tags)}
        if current != metadata:
            video.source.delete(save=False)
            video.delete()


# Settings that only shape answering queries or housekeeping, not what ingestion makes.
QUERY_TIME_SETTINGS = frozenset({
    "WORK_DIR", "SIGNAL_WINDOW", "MOMENTS_PER_VIDEO", "MAX_UPLOAD_BYTES", "ASR_THREADS",
    "RECOMMEND_HALF_LIFE_DAYS", "SERVE_MEDIA", "MAX_RETRIES", "RETRY_BACKOFF_SECONDS",
    "RETRY_BACKOFF_MAX_SECONDS", "SIGNAL_WEIGHTS", "KIND_WEIGHTS", "FUSION_PROFILES",
    "FUSION_PROFILE_FILE", "RELEVANCE_TIERS", "QUERY_THREADS", "INGEST_ROOTS",
    "STUCK_AFTER_MIN_SECONDS", "STUCK_AFTER_DURATION_FACTOR", "RECOVER_EVERY_SECONDS",
    "MAX_ATTEMPTS", "TYPO_MAX_DF", "SUGGEST_CHECK_SECONDS", "SUGGEST_BUILD_IN_BACKGROUND",
    # How the branches run, and the profile's name (its model is ASR_MODEL, which counts).
    "EAGER_BRANCH_THREADS", "ASR_PROFILE",
})


def pipeline_fingerprint() -> dict:
    """Return what ingestion depends on: the stages and the settings they read."""
    from workers.pipeline import STAGE_NAMES

    conf = {key: value for key, value in settings.REELSEARCH.items()
            if key not in QUERY_TIME_SETTINGS}
    return json.loads(json.dumps({"stages": list(STAGE_NAMES), "settings": conf},
                                 default=str, sort_keys=True))


def clear_catalog() -> int:
    """Delete every video of a throwaway catalog (and its copied file); return how many."""
    videos = list(Video.objects.all())
    for video in videos:
        video.source.delete(save=False)
        video.delete()
    return len(videos)


# --------------------------------------------------------------------------- queries


def build_queries(manifest: Manifest, ready: dict[str, str]) -> tuple[list[Query], list[Query]]:
    """Return the caption queries (identical texts merged) and the moment queries."""
    grouped: dict[str, tuple[str, list[str], list[str]]] = {}
    moments: list[Query] = []
    for clip in manifest.clips:
        video_id = ready.get(clip.clip_id)
        if video_id is None:
            continue
        for caption in clip.captions:
            text, targets, clip_ids = grouped.setdefault(_key(caption), (caption, [], []))
            if video_id not in targets:
                targets.append(video_id)
                clip_ids.append(clip.clip_id)
        moments.extend(Query(m.query, (video_id,), (clip.clip_id,), (m.start, m.end), m.kind)
                       for m in clip.moments)
    captions = [Query(text, tuple(targets), tuple(clip_ids))
                for text, targets, clip_ids in grouped.values()]
    return captions, moments


def no_answer_queries(manifest: Manifest) -> list[Query]:
    """Return the manifest's no-answer queries (no relevant video)."""
    return [Query(text, (), ()) for text in dict.fromkeys(manifest.no_answer)]


def _key(text: str) -> str:
    return " ".join(text.casefold().split())


# --------------------------------------------------------------------------- configurations


def visual_model_configured() -> bool:
    """Return True when settings name a visual (CLIP-family) model."""
    conf = settings.REELSEARCH
    return any(conf.get(name) for name in VISUAL_MODEL_SETTINGS)


def available_signals() -> tuple[str, ...]:
    """Return the signals search offers here (visual only with a visual model configured)."""
    signals = tuple(search_service.SIGNALS)
    if "visual" in signals and not visual_model_configured():
        signals = tuple(s for s in signals if s != "visual")
    return signals


def parse_fusion(text: str) -> FusionSpec:
    """Parse METHOD[/NORMALIZATION[/WEIGHTS[/OPTIONS]]], e.g. "arithmetic/z_score/bm25=2".

    OPTIONS is a comma list of ``dual_softmax`` (re-score the text signal) and
    ``coverage=N`` (gate BM25 by the share of query terms matched, to the power N).
    """
    parts = [part.strip() for part in text.split("/")]
    if not parts[0] or len(parts) > 4:
        raise ValueError(f"--fusion {text!r}: write METHOD[/NORMALIZATION[/WEIGHTS[/OPTIONS]]],"
                         " e.g. 'arithmetic/min_max' or 'rrf' or "
                         "'arithmetic/min_max/bm25=0.3,text=0.7' or "
                         "'arithmetic/min_max/bm25=0.3/coverage=3,dual_softmax'.")
    normalization = parts[1] if len(parts) > 1 and parts[1] else "min_max"
    weights = parts[2] if len(parts) > 2 else ""
    rescore, coverage = "", 0.0
    for option in (parts[3].split(",") if len(parts) > 3 else []):
        name, _, value = option.strip().partition("=")
        if name == "coverage":
            coverage = float(value)
        elif name:
            rescore = name
    return FusionSpec.parse(parts[0], normalization=normalization, weights=weights,
                            rescore=rescore, coverage=coverage)


def fusion_key(spec: FusionSpec) -> str:
    """Return a short name for a fusion spec ("rrf", "arithmetic/min_max", ...)."""
    key = spec.method if spec.method == "rrf" else f"{spec.method}/{spec.normalization}"
    options = [f"coverage={spec.coverage:g}"] if spec.coverage else []
    options += [spec.rescore] if spec.rescore else []
    if spec.weights or options:
        key += "/" + ",".join(f"{name}={weight:g}" for name, weight in spec.weights.items())
    if options:
        key += "/" + ",".join(options)
    return key


def configurations(fusions: Sequence[FusionSpec] | None = None,
                   signals: Sequence[str] | None = None) -> list[Configuration]:
    """Return the single-signal ablations, then one hybrid configuration per fusion spec."""
    signals = tuple(signals or available_signals())
    specs = list(fusions or [parse_fusion(text) for text in DEFAULT_FUSIONS])
    configs = [Configuration(name, SIGNAL_LABELS.get(name, f"{name} only"), (name,),
                             FusionSpec(), "signal") for name in signals]
    if len(signals) > 1:
        profile = get_profile(DEFAULT_PROFILE)
        configs.append(Configuration("default", f"hybrid default ({profile.key})", signals,
                                     profile.fusion, "fusion", DEFAULT_PROFILE))
        seen = set()
        for spec in specs:
            key = fusion_key(spec)
            if key not in seen:
                seen.add(key)
                configs.append(Configuration(key, f"hybrid {key}", signals, spec, "fusion"))
    return configs


# --------------------------------------------------------------------------- running


def ask(query: Query, config: Configuration, catalog: frozenset[str],
        backend: str = "default") -> Outcome:
    """Run one query under one configuration and rank its relevant videos."""
    started = time.perf_counter()
    response = search_service.search(_request(query.text, config, backend, page=1))
    latency = (time.perf_counter() - started) * 1000
    results = [(str(m.video.pk), m.score, m) for m in response.results
               if str(m.video.pk) in catalog]
    top_tier = results[0][2].tier if results else None
    if not query.targets:  # a no-answer query: only its tiers matter
        return Outcome((), latency, False, top_tier=top_tier,
                       steps_ms={k: v for k, v in response.timings_ms.items() if k != "total"})
    results = _more_pages(query, config, catalog, backend, response, results)
    ranking = [(video_id, score) for video_id, score, _ in results]
    ranks = tuple(metrics.rank_of(ranking, target, len(catalog)) for target in query.targets)
    top_iou = target_iou = None
    if query.span is not None:
        top_iou = _iou(results[0][2], query) if results and results[0][0] in query.targets else 0.0
        mine = [match for video_id, _, match in results if video_id in query.targets]
        target_iou = _iou(mine[0], query) if mine else 0.0
    found = any(video_id in query.targets for video_id, _ in ranking)
    steps = {k: v for k, v in response.timings_ms.items() if k != "total"}
    target_tier = next((match.tier for video_id, _, match in results
                        if video_id in query.targets), None)
    return Outcome(ranks, latency, found, top_iou, target_iou, steps, target_tier, top_tier)


def _request(text: str, config: Configuration, backend: str, page: int) -> SearchRequest:
    if config.profile is not None:
        return SearchRequest(query=text, k=MAX_K, page=page, signals=config.signals,
                             backend=backend, profile=config.profile)
    return SearchRequest(query=text, k=MAX_K, page=page, fusion=config.fusion,
                         signals=config.signals, backend=backend)


def _more_pages(query: Query, config: Configuration, catalog: frozenset[str], backend: str,
                response: SearchResponse, results: list) -> list:
    """Fetch further pages until every target is placed and its ties are complete."""
    page, fetched = 1, len(response.results)
    while fetched < response.total and _incomplete(query, results):
        page += 1
        more = search_service.search(_request(query.text, config, backend, page)).results
        if not more:
            break
        fetched += len(more)
        results += [(str(m.video.pk), m.score, m) for m in more if str(m.video.pk) in catalog]
    return results


def _incomplete(query: Query, results: list) -> bool:
    found = {video_id: score for video_id, score, _ in results if video_id in query.targets}
    if len(found) < len(query.targets):
        return True
    return bool(results) and results[-1][1] >= min(found.values())


def _iou(match: search_service.VideoMatch, query: Query) -> float:
    if not match.moments or query.span is None:
        return 0.0
    top = match.moments[0]
    return metrics.tiou((top.start, top.end), query.span)


def run_configuration(config: Configuration, queries: Sequence[Query],
                      catalog: frozenset[str], backend: str = "default") -> list[Outcome]:
    """Ask every query under one configuration (after one untimed warm-up query)."""
    if queries:
        search_service.search(_request(queries[0].text, config, backend, page=1))
    return [ask(query, config, catalog, backend) for query in queries]


def summarize(config: Configuration, captions: list[Outcome], moments: list[Outcome],
              n_catalog: int, no_answer: Sequence[Outcome] = (),
              moment_kinds: Sequence[str] = ()) -> dict:
    """Return the metrics of one configuration over a catalog of n_catalog videos."""
    latencies = [o.latency_ms for o in captions + moments]
    summary: dict = {"key": config.key, "label": config.label, "kind": config.kind,
                     "signals": list(config.signals), "default": config.profile is not None,
                     "fusion": {"method": config.fusion.method,
                                "normalization": config.fusion.normalization,
                                "weights": dict(config.fusion.weights),
                                "rank_constant": config.fusion.rank_constant,
                                "rescore": config.fusion.rescore,
                                "coverage": config.fusion.coverage}}
    summary["tiers"] = tier_metrics(captions + moments, no_answer)
    if captions:
        first = [min(o.ranks) for o in captions]
        summary["video"] = metrics.retrieval_metrics([o.ranks for o in captions])
        summary["recall_curve"] = metrics.recall_curve(first, n_catalog)
        summary["found_share"] = sum(o.found for o in captions) / len(captions)
    if moments:
        summary["moments"] = {
            "top_moment": metrics.moment_metrics([o.top_iou or 0.0 for o in moments]),
            "in_target_video": metrics.moment_metrics([o.target_iou or 0.0 for o in moments]),
            "video": metrics.retrieval_metrics([o.ranks for o in moments]),
        }
        by_kind = _moments_by_kind(moments, moment_kinds)
        if by_kind:
            summary["moments"]["by_kind"] = by_kind
    if latencies:
        steps = sorted({step for o in captions + moments for step in o.steps_ms})
        summary["latency_ms"] = {
            "p50": metrics.percentile(latencies, 50), "p95": metrics.percentile(latencies, 95),
            "mean": sum(latencies) / len(latencies), "n": len(latencies),
            "steps_p50": {step: metrics.percentile([o.steps_ms.get(step, 0.0)
                                                    for o in captions + moments], 50)
                          for step in steps},
            "samples": latencies,
        }
    return summary


def tier_metrics(answerable: Sequence[Outcome], no_answer: Sequence[Outcome]) -> dict:
    """Return how well relevance tiers separate answerable from no-answer queries."""
    tiers: dict = {}
    if answerable:
        tiers["answerable_target_high"] = (
            sum(o.target_tier == "high" for o in answerable) / len(answerable))
        tiers["answerable_top_high"] = sum(o.top_tier == "high" for o in answerable) / len(
            answerable)
    if no_answer:
        tiers["no_answer_queries"] = len(no_answer)
        tiers["no_answer_without_high"] = (
            sum(o.top_tier != "high" for o in no_answer) / len(no_answer))
    return tiers


def _moments_by_kind(moments: Sequence[Outcome], kinds: Sequence[str]) -> dict:
    found: dict = {}
    for kind in sorted({k for k in kinds if k}):
        mine = [o for o, k in zip(moments, kinds, strict=True) if k == kind]
        found[kind] = {
            "n": len(mine),
            "top_moment": metrics.moment_metrics([o.top_iou or 0.0 for o in mine]),
            "in_target_video": metrics.moment_metrics([o.target_iou or 0.0 for o in mine]),
        }
    return found


def run_evaluation(manifest: Manifest, ready: dict[str, str],
                   configs: Sequence[Configuration], *, backend: str = "default",
                   log: Log = print) -> dict:
    """Ask every query under every configuration; return everything the report shows."""
    catalog = frozenset(str(pk) for pk in Video.objects.filter(
        status=VideoStatus.READY).values_list("pk", flat=True))
    captions, moment_queries = build_queries(manifest, ready)
    negatives = no_answer_queries(manifest)
    result = {
        "manifest": str(manifest.path),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": environment(backend),
        "catalog": {"clips_in_manifest": len(manifest.clips) + _bad_lines(manifest),
                    "clips_evaluated": len(ready), "videos_ranked_over": len(catalog),
                    "excluded": [asdict(e) for e in manifest.excluded]},
        "queries": {"captions": len(captions), "moments": len(moment_queries),
                    "no_answer": len(negatives)},
        "chance": metrics.chance_metrics(len(catalog)) if catalog else None,
        "configurations": [],
        "per_query": [{"query": q.text, "clips": list(q.clip_ids),
                       "span": list(q.span) if q.span else None, "ranks": {}}
                      for q in captions + moment_queries],
    }
    if not ready:
        return result
    for config in configs:
        log(f"… {config.label}: {len(captions) + len(moment_queries)} queries")
        outcomes = run_configuration(config, captions + moment_queries, catalog, backend)
        caption_outcomes, moment_outcomes = outcomes[:len(captions)], outcomes[len(captions):]
        negative = [ask(q, config, catalog, backend) for q in negatives]
        summary = summarize(config, caption_outcomes, moment_outcomes, len(catalog), negative,
                            [q.moment_kind for q in moment_queries])
        result["configurations"].append(summary)
        for row, outcome in zip(result["per_query"], outcomes, strict=True):
            row["ranks"][config.key] = list(outcome.ranks)
    return result


def _bad_lines(manifest: Manifest) -> int:
    clip_ids = {clip.clip_id for clip in manifest.clips}
    return sum(1 for e in manifest.excluded if e.clip_id not in clip_ids)


def environment(backend: str) -> dict:
    """Return the configuration the numbers were measured with."""
    conf = settings.REELSEARCH
    backend_conf = settings.RETRIEVAL_BACKENDS.get(backend, {})
    return {
        "backend": backend, "backend_class": backend_conf.get("BACKEND", ""),
        "signals_available": list(available_signals()),
        "visual_model": next((str(conf[n]) for n in VISUAL_MODEL_SETTINGS if conf.get(n)), None),
        "text_model": conf["TEXT_MODEL"], "asr_model": conf["ASR_MODEL"],
        "concept_model": conf.get("CONCEPT_MODEL") or None, "ocr": conf.get("OCR_ENABLED"),
        "chunk_seconds": conf["CHUNK_TARGET_SECONDS"],
        "chunk_overlap_seconds": conf["CHUNK_OVERLAP_SECONDS"],
        "signal_window": conf["SIGNAL_WINDOW"], "k_per_page": MAX_K,
        "settings": json.loads(json.dumps({k: v for k, v in conf.items() if k != "WORK_DIR"},
                                          default=str)),
        "python": platform.python_version(), "machine": platform.machine(),
        "cpus": _cpus(), "load_average_1m": round(os.getloadavg()[0], 2),
    }


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
